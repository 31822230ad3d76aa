package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
)

func (a *app) vmSessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "session",
		Aliases: []string{"sessions"},
		Short:   "Long-lived guest processes the daemon manages: start, attach, logs, stop",
		Long: `A session is a guest process that the guest agent supervises: its output goes
to logs kept in the guest, and in pipe mode the agent keeps its stdin open
so clients can attach, detach and attach again. Sessions outlive the CLI, the
daemon and its restarts; they end with the process or the VM.`,
	}
	cmd.AddCommand(a.sessionStartCmd(), a.sessionListCmd(), a.sessionShowCmd(), a.sessionLogsCmd(),
		a.sessionAttachCmd(), a.sessionStopCmd(), a.sessionKillCmd(), a.sessionRmCmd())
	return cmd
}

func (a *app) sessionStartCmd() *cobra.Command {
	var req api.StartSessionRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "start VM --name NAME [flags] -- COMMAND [ARG...]",
		Short: "Start a session after checking its directory and commands in the guest",
		Long: `Start COMMAND in the guest as a session named NAME. Before launching, the
daemon checks that --cwd exists in the guest and that COMMAND and every
--require-command resolve in the guest PATH; otherwise nothing starts.

--stdin-mode detached (the default) gives the process /dev/null as stdin.
--stdin-mode pipe keeps a stdin pipe open in the guest for 'session attach'.`,
		Example: `  banger vm session start dev --name planner --cwd /root/repo --stdin-mode pipe -- pi --mode rpc --no-session
  banger vm session start dev --name web --require-command node -- npm run dev`,
		Args: func(cmd *cobra.Command, args []string) error {
			_, _, err := splitCommand(cmd, args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			vm, argv, _ := splitCommand(cmd, args)
			req.Argv = argv
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			s, err := cl.StartSession(cmd.Context(), vm, req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, s)
			}
			fmt.Fprintf(a.stdout, "session %s started in vm %s (pid %d, %s)\n", safe(s.Name), s.VM, s.PID, safe(s.StdinMode))
			if s.StdinMode == api.SessionPipe {
				fmt.Fprintf(a.stdout, "attach with: banger vm session attach %s %s\n", s.VM, safe(s.Name))
			} else {
				fmt.Fprintf(a.stdout, "logs: banger vm session logs %s %s -f\n", s.VM, safe(s.Name))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "session name: 1-64 of [A-Za-z0-9._-]")
	f.StringVar(&req.Cwd, "cwd", "", "guest working directory (default: root's home)")
	f.StringVar(&req.StdinMode, "stdin-mode", api.SessionDetached, "detached (stdin is /dev/null) or pipe (attachable stdin)")
	f.StringArrayVar(&req.RequireCommands, "require-command", nil, "a command that must be in the guest PATH (repeatable)")
	f.StringArrayVar(&req.Env, "env", nil, "KEY=VALUE added to the environment (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the session as JSON")
	cmd.MarkFlagRequired("name")
	return cmd
}

// splitCommand reads 'VM -- COMMAND ARGS...' (the -- may be left out when
// the command has no flags of its own).
func splitCommand(cmd *cobra.Command, args []string) (string, []string, error) {
	dash := cmd.ArgsLenAtDash()
	switch {
	case len(args) == 0:
		return "", nil, errdefs.Invalid("%s needs a VM name and a command after --; see '%s --help'", cmd.CommandPath(), cmd.CommandPath())
	case dash > 1:
		return "", nil, errdefs.Invalid("only the VM name goes before --, got %q; see '%s --help'", strings.Join(args[:dash], " "), cmd.CommandPath())
	case len(args) < 2:
		return "", nil, errdefs.Invalid("%s needs a command after --, like: -- pi --mode rpc", cmd.CommandPath())
	}
	return args[0], args[1:], nil
}

func (a *app) sessionListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list VM",
		Aliases: []string{"ls"},
		Short:   "List a VM's sessions, running and ended",
		Args:    exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ss, err := cl.Sessions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ss)
			}
			rows := [][]string{{"NAME", "STATE", "STDIN", "PID", "STARTED", "EXIT", "COMMAND"}}
			for _, s := range ss {
				rows = append(rows, []string{s.Name, sessionState(s), s.StdinMode, strconv.Itoa(s.PID), ago(s.StartedAt), exitString(s), truncate(strings.Join(s.Argv, " "), 50)})
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) sessionShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show VM NAME",
		Short: "Show a session",
		Args:  exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			s, err := cl.Session(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, s)
			}
			rows := [][]string{
				{"name:", s.Name},
				{"vm:", s.VM},
				{"state:", sessionState(s)},
				{"command:", strings.Join(s.Argv, " ")},
				{"cwd:", orDash(s.Cwd)},
				{"stdin:", s.StdinMode + stdinNote(s)},
				{"pid:", strconv.Itoa(s.PID)},
				{"started:", ago(s.StartedAt)},
				{"exit:", exitString(s)},
			}
			if s.Note != "" {
				rows = append(rows, []string{"note:", s.Note})
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) sessionLogsCmd() *cobra.Command {
	var stream string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs VM NAME",
		Short: "Print a session's stdout (or --stream stderr) from the start",
		Args:  exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			return cl.SessionLogs(cmd.Context(), args[0], args[1], stream, follow, a.stdout)
		},
	}
	cmd.Flags().StringVar(&stream, "stream", "stdout", "stdout or stderr")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the session ends")
	return cmd
}

func (a *app) sessionStopCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop VM NAME",
		Short: "Stop a session: SIGTERM, then SIGKILL after --timeout",
		Args:  exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			s, err := cl.StopSession(cmd.Context(), args[0], args[1], api.StopSessionRequest{Timeout: timeout})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "session %s stopped (%s)\n", safe(s.Name), safe(exitString(s)))
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait after SIGTERM before SIGKILL")
	return cmd
}

func (a *app) sessionKillCmd() *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill VM NAME",
		Short: "Send a signal (KILL by default) to a session's process group",
		Args:  exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.KillSession(cmd.Context(), args[0], args[1], sig); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "sent SIG%s to session %s\n", strings.TrimPrefix(strings.ToUpper(sig), "SIG"), args[1])
			return nil
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal name (TERM, INT, HUP, KILL, ...) or number")
	return cmd
}

func (a *app) sessionRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm VM NAME",
		Aliases: []string{"remove"},
		Short:   "Forget an ended session and delete its logs",
		Args:    exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.RemoveSession(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed session %s\n", args[1])
			return nil
		},
	}
}

func sessionState(s api.Session) string {
	if s.State == api.SessionRunning && s.Attached {
		return "running, attached"
	}
	return s.State
}

func stdinNote(s api.Session) string {
	switch {
	case s.StdinMode != api.SessionPipe:
		return ""
	case s.StdinOpen:
		return " (open)"
	default:
		return " (closed)"
	}
}

func exitString(s api.Session) string {
	switch {
	case s.State == api.SessionRunning:
		return "-"
	case s.Exit == nil:
		return "unknown"
	case s.Exit.Signal != "":
		return "SIG" + s.Exit.Signal
	default:
		return strconv.Itoa(s.Exit.Code)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func (a *app) sessionAttachCmd() *cobra.Command {
	var replay, noStdin bool
	cmd := &cobra.Command{
		Use:   "attach VM NAME",
		Short: "Connect this terminal or these pipes to a session (one client at a time)",
		Long: `Attach to a session: its new output comes here (stdout and stderr apart), and
in pipe mode what you type or pipe in goes to its stdin. Only one client may
be attached at a time; a second attach is refused.

On a terminal, input is sent a line at a time; Ctrl-] (or Ctrl-C, or Ctrl-D
on an empty line) detaches and leaves the session running with its stdin
open. With pipes, bytes pass through unchanged, and the end of this
command's stdin closes the session's stdin (use --no-stdin to only watch).
Interrupting the command detaches.

The exit status is the session's when it ends while attached, 0 after a
detach.`,
		Args: exactArgs(2, "a VM name and a session name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			conn, _, err := cl.AttachSession(cmd.Context(), args[0], args[1], api.AttachRequest{Replay: replay})
			if err != nil {
				return err
			}
			defer conn.Close()
			end, err := a.bridgeStdio(cmd.Context(), conn, stdioOpts{noStdin: noStdin, label: "session " + args[1]})
			if errors.Is(err, stdiomux.ErrLost) {
				return errdefs.Unavailable("lost bangerd while attached; session %s keeps running in the guest: re-attach with 'banger vm session attach %s %s'", args[1], args[0], args[1])
			}
			if err != nil {
				return err
			}
			return endStatus(end)
		},
	}
	cmd.Flags().BoolVar(&replay, "replay", false, "first print the session's output from its start")
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not send input (and never close the session's stdin)")
	return cmd
}

// stdioOpts tune bridgeStdio.
type stdioOpts struct {
	noStdin bool   // never read stdin
	raw     bool   // always pass bytes through, even on a terminal (acp)
	label   string // what the terminal messages call the other end
}

// bridgeStdio connects the process's stdio to the bridge until its exit
// frame. On a terminal (both ends) input goes a line at a time and Ctrl-]
// detaches; otherwise bytes pass through and stdin's end closes the
// remote stdin. ctx ending (Ctrl-C on pipes, a signal) detaches.
func (a *app) bridgeStdio(ctx context.Context, conn *stdiomux.Conn, o stdioOpts) (stdiomux.End, error) {
	stop := context.AfterFunc(ctx, func() { conn.Detach() })
	defer stop()
	if !o.raw && isTTY(a.stdout) && isTTY(os.Stdin) {
		return a.terminal(conn, o)
	}
	if conn.Hello().Stdin && !o.noStdin {
		go func() {
			if err := conn.SendStdin(os.Stdin); err != nil {
				conn.Detach()
			}
		}()
	}
	return conn.Output(a.stdout, a.stderr)
}

// terminal runs an attach on a terminal in raw mode with a line editor, so
// that output arriving while a line is typed does not garble it.
func (a *app) terminal(conn *stdiomux.Conn, o stdioOpts) (stdiomux.End, error) {
	fd := int(os.Stdin.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return stdiomux.End{}, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	defer term.Restore(fd, state)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{detachKey{os.Stdin}, a.stdout}, "")
	if w, h, err := term.GetSize(fd); err == nil {
		t.SetSize(w, h)
	}
	note := "Ctrl-] detaches"
	if !conn.Hello().Stdin || o.noStdin {
		note += "; the process takes no input"
	}
	fmt.Fprintf(t, "attached to %s (%s)\n", o.label, note)
	go func() {
		for {
			line, err := t.ReadLine()
			if err != nil {
				conn.Detach() // Ctrl-], Ctrl-C, Ctrl-D
				return
			}
			if conn.Hello().Stdin && !o.noStdin {
				conn.Write([]byte(line + "\n"))
			}
		}
	}()
	end, err := conn.Output(t, t)
	if err == nil && end.Detached {
		fmt.Fprintf(t, "detached from %s; it keeps running\n", o.label)
	}
	return end, err
}

// detachKey ends the input at Ctrl-] (0x1d), which the line editor then
// reports as end of input.
type detachKey struct{ r io.Reader }

func (d detachKey) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if i := bytes.IndexByte(p[:n], 0x1d); i >= 0 {
		return i, io.EOF
	}
	return n, err
}

// endStatus turns the bridge's end into this command's exit: the remote
// process's status, 0 after a detach.
func endStatus(end stdiomux.End) error {
	switch {
	case end.Error != nil:
		return errdefs.FromKind(end.Error.Kind, end.Error.Message)
	case end.Exit == nil:
		return nil // detached, or ended with an unknown status
	case end.Exit.Signal != "":
		if n := unix.SignalNum("SIG" + end.Exit.Signal); n != 0 {
			return exitError{128 + int(n)}
		}
		return exitError{1}
	case end.Exit.Code != 0:
		return exitError{end.Exit.Code}
	}
	return nil
}
