package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

func main() {
	in, _ := os.Open(os.Args[1])
	out, _ := os.Create(os.Args[2])
	if len(os.Args) > 3 {
		pf, _ := os.Create(os.Args[3])
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	t := time.Now()
	if err := tar2ext4.ConvertTarToExt4(in, out, tar2ext4.MaximumDiskSize(64<<30)); err != nil {
		panic(err)
	}
	out.Close()
	fmt.Println("convert", time.Since(t))
}
