// Command banger is the banger CLI.
package main

import (
	"os"

	"banger/internal/cli"
)

func main() { os.Exit(cli.Main()) }
