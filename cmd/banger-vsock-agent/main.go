// Command banger-vsock-agent is the guest agent injected into every VM.
// It is static (CGO off) so it runs on any image.
package main

import (
	"flag"
	"fmt"
	"os"

	"banger/internal/version"
)

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("banger-vsock-agent", version.String())
		return
	}
	fmt.Fprintln(os.Stderr, "banger-vsock-agent: the guest agent protocol is not built yet")
	os.Exit(2)
}
