package mcpserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
)

// Exec time limits: the default, the most a call may ask for, and how
// long a killed command gets to report its end.
const (
	defaultExecTimeout = 2 * time.Minute
	maxExecTimeout     = time.Hour
	killGrace          = 5 * time.Second
	maxStdinBytes      = 1 << 20
)

type execIn struct {
	VM             string            `json:"vm" jsonschema:"name of the VM"`
	Command        string            `json:"command,omitempty" jsonschema:"shell command line, run with sh -c (give this or argv)"`
	Argv           []string          `json:"argv,omitempty" jsonschema:"program and arguments, run without a shell (give this or command)"`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"absolute guest working directory; /root when omitted"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables added to the command's"`
	Stdin          string            `json:"stdin,omitempty" jsonschema:"text given to the command on its standard input (at most 1 MiB)"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"kill the command after this many seconds; default 120, at most 3600"`
	MaxOutputBytes int               `json:"max_output_bytes,omitempty" jsonschema:"bytes kept of stdout and of stderr each; default 65536, at most 1048576; the rest is cut with a marker"`
}

type execOut struct {
	ExitCode        int    `json:"exit_code" jsonschema:"the command's exit status; -1 when a signal killed it or it timed out"`
	Signal          string `json:"signal,omitempty" jsonschema:"the signal that killed the command"`
	TimedOut        bool   `json:"timed_out,omitempty" jsonschema:"the command ran past timeout_seconds and was killed"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
}

func (s *Server) addExecTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "vm_exec",
		Description: "Run a command in a VM as root through banger's guest agent and wait for it to end; returns its " +
			"exit code, stdout and stderr (each cut to max_output_bytes with a marker). Use session_start instead for " +
			"servers and anything that should outlive the call.",
	}, s.vmExec)
}

func (s *Server) vmExec(ctx context.Context, _ *mcp.CallToolRequest, in execIn) (*mcp.CallToolResult, execOut, error) {
	argv, err := commandArgv(in.Command, in.Argv)
	if err != nil {
		return nil, execOut{}, err
	}
	env, err := envList(in.Env)
	if err != nil {
		return nil, execOut{}, err
	}
	if len(in.Stdin) > maxStdinBytes {
		return nil, execOut{}, errdefs.Invalid("stdin is %d bytes, more than %d; write large input with file_write and redirect from the file", len(in.Stdin), maxStdinBytes)
	}
	timeout, err := execTimeout(in.TimeoutSeconds)
	if err != nil {
		return nil, execOut{}, err
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, execOut{}, err
	}
	conn, err := s.cl.Exec(ctx, in.VM, api.ExecRequest{Argv: argv, Cwd: in.Cwd, Env: env})
	if err != nil {
		return nil, execOut{}, err
	}
	limit := outputLimit(in.MaxOutputBytes)
	stdout, stderr := &headBuffer{limit: limit}, &headBuffer{limit: limit}
	end, timedOut, err := relay(ctx, conn, in.Stdin, stdout, stderr, timeout)
	if err != nil {
		return nil, execOut{}, err
	}
	out := execOut{
		ExitCode: -1, TimedOut: timedOut,
		Stdout: stdout.Text(), Stderr: stderr.Text(), StdoutTruncated: stdout.Truncated(), StderrTruncated: stderr.Truncated(),
	}
	if end.Exit != nil && !timedOut {
		out.ExitCode, out.Signal = end.Exit.Code, end.Exit.Signal
	}
	return nil, out, nil
}

// relay feeds stdin to an exec and collects its output until it ends,
// killing it (by detaching) when timeout passes or ctx ends. It returns
// only once every goroutine it started is done.
func relay(ctx context.Context, conn *stdiomux.Conn, stdin string, stdout, stderr *headBuffer, timeout time.Duration) (stdiomux.End, bool, error) {
	var wg sync.WaitGroup
	defer func() {
		conn.Close() // unblocks a stdin write the command never read
		wg.Wait()
	}()
	wg.Go(func() {
		if stdin == "" {
			conn.CloseStdin()
			return
		}
		conn.SendStdin(strings.NewReader(stdin))
	})
	type result struct {
		end stdiomux.End
		err error
	}
	done := make(chan result, 1)
	wg.Go(func() {
		end, err := conn.Output(stdout, stderr)
		done <- result{end, err}
	})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var r result
	timedOut := false
	select {
	case r = <-done:
	case <-timer.C:
		timedOut = true
		r = kill(conn, done)
	case <-ctx.Done():
		kill(conn, done)
		return stdiomux.End{}, false, ctx.Err()
	}
	if r.err != nil {
		if errors.Is(r.err, stdiomux.ErrLost) {
			return stdiomux.End{}, false, errdefs.Unavailable("lost bangerd while the command ran; it was killed")
		}
		return stdiomux.End{}, false, r.err
	}
	if r.end.Error != nil {
		return stdiomux.End{}, false, errdefs.FromKind(r.end.Error.Kind, r.end.Error.Message)
	}
	return r.end, timedOut, nil
}

// kill ends an exec (a detach kills the command) and waits a little for
// its end; past that it drops the connection, which ends Output too.
func kill[T any](conn *stdiomux.Conn, done <-chan T) T {
	conn.Detach()
	select {
	case r := <-done:
		return r
	case <-time.After(killGrace):
		conn.Close()
		return <-done
	}
}

// commandArgv turns a tool's command or argv into the argv to run.
func commandArgv(command string, argv []string) ([]string, error) {
	switch {
	case command != "" && len(argv) > 0:
		return nil, errdefs.Invalid("give either command (a shell line) or argv (a program and its arguments), not both")
	case command != "":
		return []string{"sh", "-c", command}, nil
	case len(argv) > 0 && argv[0] != "":
		return argv, nil
	}
	return nil, errdefs.Invalid("give the command to run: command (a shell line, e.g. \"make test\") or argv ([\"make\", \"test\"])")
}

// envList turns an env map into sorted KEY=VALUE entries.
func envList(env map[string]string) ([]string, error) {
	var out []string
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return nil, errdefs.Invalid("env: %q is not a variable name (no '=' or NUL, not empty)", k)
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

func execTimeout(seconds int) (time.Duration, error) {
	switch {
	case seconds < 0:
		return 0, errdefs.Invalid("timeout_seconds is %d; give a positive number of seconds, at most %d", seconds, int(maxExecTimeout.Seconds()))
	case seconds == 0:
		return defaultExecTimeout, nil
	case time.Duration(seconds)*time.Second > maxExecTimeout:
		return 0, errdefs.Invalid("timeout_seconds is %d, more than %d; run long work with session_start", seconds, int(maxExecTimeout.Seconds()))
	}
	return time.Duration(seconds) * time.Second, nil
}
