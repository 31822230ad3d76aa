package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
)

func (a *app) vmExecCmd() *cobra.Command {
	var req api.ExecRequest
	var tty, noTTY bool
	cmd := &cobra.Command{
		Use:   "exec VM [flags] -- COMMAND [ARG...]",
		Short: "Run a command in the guest through its agent (no SSH) and exit with its status",
		Long: `Run COMMAND in the guest through the banger agent: no SSH server, DNS or
network route is needed. stdin, stdout and stderr are relayed byte for
byte, and banger exits with the command's status (128+N when signal N
killed it), so it fits in scripts:

  banger vm exec dev -- make test; echo $?

With -t, or when both stdin and stdout are terminals, the command runs on
a pseudo-terminal in the guest: the local terminal is put in raw mode,
window size changes follow, and Ctrl-C reaches the guest's foreground
process as on a local terminal (stdout and stderr then arrive merged). -T
never allocates one. Without a terminal, SIGINT, SIGTERM, SIGHUP and
SIGQUIT received by banger are forwarded to the command's process group;
a third Ctrl-C gives up and kills it.`,
		Example: `  banger vm exec dev -- uname -a
  banger vm exec dev --cwd /root/repo --env CI=1 -- make test
  banger vm exec -t dev -- sh
  tar -C src -cf - . | banger vm exec dev -- tar -C /root/src -xf -`,
		Args: func(cmd *cobra.Command, args []string) error {
			_, _, err := splitCommand(cmd, args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			vm, argv, _ := splitCommand(cmd, args)
			if tty && noTTY {
				return errdefs.Invalid("-t and -T contradict each other; pick one")
			}
			req.Argv = argv
			req.TTY = tty || (!noTTY && isTTY(os.Stdin) && isTTY(a.stdout))
			return a.runExec(cmd.Context(), vm, req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Cwd, "cwd", "", "guest working directory, absolute (default: root's home)")
	f.StringArrayVar(&req.Env, "env", nil, "KEY=VALUE added to the command's environment (repeatable)")
	f.BoolVarP(&tty, "tty", "t", false, "run the command on a pseudo-terminal")
	f.BoolVarP(&noTTY, "no-tty", "T", false, "never allocate a pseudo-terminal")
	return cmd
}

// runExec starts req and relays it until it ends. The bridge lives past
// the root context (which Ctrl-C cancels): signals are forwarded instead.
func (a *app) runExec(ctx context.Context, vm string, req api.ExecRequest) error {
	if req.TTY {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			req.Cols, req.Rows = uint16(w), uint16(h)
		}
		req.Term = os.Getenv("TERM")
	}
	cl, err := a.client(ctx)
	if err != nil {
		return err
	}
	conn, err := cl.Exec(ctx, vm, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	var end stdiomux.End
	if req.TTY {
		end, err = a.execTTY(conn)
	} else {
		end, err = a.execPipes(conn)
	}
	if errors.Is(err, stdiomux.ErrLost) {
		return errdefs.Unavailable("lost bangerd while running %s in vm %s; the command was killed", argv0(req.Argv), vm)
	}
	if err != nil {
		return err
	}
	if end.Detached {
		return exitError{130}
	}
	return endStatus(end)
}

func argv0(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return safe(argv[0])
}

// forwardedSignals are relayed to the guest's process group.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// forwardSignals relays the signals banger receives until stop is called;
// the third SIGINT detaches, which kills the command.
func forwardSignals(conn *stdiomux.Conn, detachOnThirdINT bool) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, forwardedSignals...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ints := 0
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				if sig == syscall.SIGINT {
					if ints++; detachOnThirdINT && ints >= 3 {
						conn.Detach()
						continue
					}
				}
				conn.Signal(signalName(sig))
			}
		}
	})
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGQUIT:
		return "QUIT"
	case syscall.SIGWINCH:
		return "WINCH"
	}
	return fmt.Sprint(int(sig))
}

// execPipes relays plain stdio: stdin until its EOF (then the command's
// stdin closes), stdout and stderr apart.
func (a *app) execPipes(conn *stdiomux.Conn) (stdiomux.End, error) {
	stop := forwardSignals(conn, true)
	defer stop()
	// Reading stdin may block for as long as the process lives (a
	// terminal, a pipe nobody closes); the goroutine ends with it.
	go func() {
		if err := conn.SendStdin(os.Stdin); err != nil {
			conn.CloseStdin()
		}
	}()
	return conn.Output(a.stdout, a.stderr)
}

// execTTY relays a terminal session: the local terminal (when stdin is
// one) goes raw so every key, Ctrl-C included, reaches the guest's PTY,
// and window size changes follow.
func (a *app) execTTY(conn *stdiomux.Conn) (stdiomux.End, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		state, err := term.MakeRaw(fd)
		if err != nil {
			return stdiomux.End{}, fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		defer term.Restore(fd, state)
	}
	stop := forwardSignals(conn, false)
	defer stop()
	stopResize := followResize(conn)
	defer stopResize()
	go func() {
		if _, err := io.Copy(conn, os.Stdin); err == nil {
			conn.CloseStdin() // a ^D on the guest's terminal
		}
	}()
	return conn.Output(a.stdout, a.stdout)
}

// followResize sends the terminal's size on every SIGWINCH until stop.
func followResize(conn *stdiomux.Conn) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					conn.Resize(uint16(h), uint16(w))
				}
			}
		}
	})
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}
