// Command testfmt is a development tool 'make test' uses: it reads
// 'go test -json' on stdin and prints what plain 'go test' would, plus
// which packages are running and for how long (see internal/testfmt).
// It exits 1 when a package failed, like 'go test'.
//
//	go test -json ./... | go run ./cmd/testfmt
package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"banger/internal/testfmt"
)

func main() {
	o := testfmt.Options{Quiet: 30 * time.Second}
	if fd := int(os.Stdout.Fd()); term.IsTerminal(fd) {
		o.Live = true
		o.Width, _, _ = term.GetSize(fd)
	}
	failed, err := testfmt.Format(os.Stdin, os.Stdout, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testfmt: reading go test -json:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
