// Package cli is the banger command line: cobra commands that call the
// daemon through the public client package (banger/client) and render what it answers.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"banger/api/errdefs"
	"banger/client"
	"banger/internal/paths"
	"banger/internal/version"
)

// app is what every command shares.
type app struct {
	stdout, stderr io.Writer
	layout         paths.Layout
	cl             *client.Client
}

// Main runs the CLI with os.Args and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot(os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ex exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "banger: interrupted")
		return 130
	}
	fmt.Fprintln(os.Stderr, "banger:", safeText(err.Error())) // errors can quote a guest's console
	return 1
}

// exitError ends the program with a code after the command has printed
// what it had to say.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// NewRoot builds the command tree writing to stdout and stderr.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "banger",
		Short: "One-command development sandboxes on Firecracker microVMs",
		Long: `banger runs development VMs on Firecracker (or QEMU) through a local daemon,
bangerd, which owns images, kernels, VMs and their network.

The daemon starts on demand; 'banger daemon' manages it explicitly.
Run 'banger doctor' to check that this host can run VMs.`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			l, err := paths.FromEnv()
			if err != nil {
				return err
			}
			a.layout = l
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddGroup(&cobra.Group{ID: "main", Title: "Commands:"}, &cobra.Group{ID: "host", Title: "Host and daemon:"})
	for _, c := range []*cobra.Command{a.vmCmd(), a.imageCmd(), a.kernelCmd(), a.eventsCmd(), a.webCmd(), a.mcpCmd()} {
		c.GroupID = "main"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.daemonCmd(), a.configCmd(), a.doctorCmd(), a.systemCmd()} {
		c.GroupID = "host"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("host")
	root.SetCompletionCommandGroupID("host")
	return root
}

// client returns a client for a running daemon, starting one if none
// answers (unless BANGER_NO_AUTOSTART is set).
func (a *app) client(ctx context.Context) (*client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	cl := client.New(a.layout.SocketPath)
	if _, err := cl.Status(ctx); err != nil {
		if !client.IsNotRunning(err) {
			return nil, err
		}
		if os.Getenv("BANGER_NO_AUTOSTART") != "" {
			return nil, err
		}
		if err := a.startDaemon(ctx, cl); err != nil {
			return nil, err
		}
	}
	a.cl = cl
	return cl, nil
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return errdefs.Invalid("%s needs %s (got %d argument(s)); see '%s --help'", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
