//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api"
)

// proc is a banger command running in the background with pipes (an
// attach, an acp bridge).
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout lines; closed at EOF
	stderr *strings.Builder
	done   chan struct{}
	code   int
}

func (e *env) start(args ...string) *proc {
	e.t.Helper()
	cmd := e.inNS(filepath.Join(binDir, "banger"), args...)
	c := &proc{t: e.t, cmd: cmd, lines: make(chan string, 1000), stderr: &strings.Builder{}, done: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		e.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	e.t.Cleanup(func() { cmd.Process.Kill(); <-c.done })
	return c
}

// send writes a line to the command's stdin.
func (c *proc) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("writing to banger: %v", err)
	}
}

// expect reads stdout lines until want.
func (c *proc) expect(want string) {
	c.t.Helper()
	for got := range c.lines {
		if got == want {
			return
		}
	}
	<-c.done
	c.t.Fatalf("banger %v ended (exit %d) before printing %q; stderr: %s", c.cmd.Args[4:], c.code, want, c.stderr)
}

// wait returns the exit code once the command ended.
func (c *proc) wait() int {
	for range c.lines {
	}
	<-c.done
	return c.code
}

func (e *env) session(vm, name string) api.Session {
	e.t.Helper()
	var s api.Session
	if err := json.Unmarshal([]byte(e.ok("vm", "session", "show", vm, name, "--json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// TestSessionAttachAcrossDaemonRestart: a pipe-mode session running a
// line-echo program is attached, fed and read; a second attach is
// refused; the daemon is killed with SIGKILL and restarted, and the
// session is attached again and continues; then logs by stream and the
// stop and kill semantics.
func TestSessionAttachAcrossDaemonRestart(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	e.ok("vm", "create", "--name", "s", "--image", "deb", "--memory", "512", "--disk-size", "2G")

	_, stderr, code := e.run("vm", "session", "start", "s", "--name", "bad", "--cwd", "/nope", "--require-command", "no-such-tool", "--", "cat")
	if code == 0 || !strings.Contains(stderr, "/nope does not exist") || !strings.Contains(stderr, "no-such-tool") {
		t.Errorf("preflight: exit %d, %q; want a refusal naming the missing directory and command", code, stderr)
	}
	if out := e.ok("vm", "session", "list", "s"); strings.Contains(out, "bad") {
		t.Errorf("a session that failed preflight exists:\n%s", out)
	}

	echo := `while read -r l; do echo "out:$l"; echo "err:$l" >&2; done`
	e.ok("vm", "session", "start", "s", "--name", "echo", "--cwd", "/root", "--stdin-mode", "pipe", "--require-command", "sh", "--", "sh", "-c", echo)
	a := e.start("vm", "session", "attach", "s", "echo")
	a.send("one")
	a.expect("out:one")

	_, stderr, code = e.run("vm", "session", "attach", "s", "echo", "--no-stdin")
	if code == 0 || !strings.Contains(stderr, "already attached") {
		t.Errorf("second attach: exit %d, %q; want it refused as already attached", code, stderr)
	}

	e.killDaemon()
	if code := a.wait(); code == 0 || !strings.Contains(a.stderr.String(), "re-attach") {
		t.Errorf("attach after the daemon died: exit %d, %q; want a failure saying how to re-attach", code, a.stderr)
	}
	e.startDaemon()
	if s := e.session("s", "echo"); s.State != api.SessionRunning || !s.StdinOpen {
		t.Fatalf("after the daemon restart the session is %+v; want running with its stdin open", s)
	}
	a = e.start("vm", "session", "attach", "s", "echo")
	a.send("two")
	a.expect("out:two")
	a.cmd.Process.Signal(syscall.SIGINT) // detach
	if code := a.wait(); code != 0 {
		t.Errorf("detach with SIGINT: exit %d; want 0 (stderr %q)", code, a.stderr)
	}
	if s := e.session("s", "echo"); s.State != api.SessionRunning || s.Attached {
		t.Errorf("after detaching the session is %+v; want running, not attached", s)
	}

	if got := e.ok("vm", "session", "logs", "s", "echo"); got != "out:one\nout:two\n" {
		t.Errorf("stdout log = %q", got)
	}
	if got := e.ok("vm", "session", "logs", "s", "echo", "--stream", "stderr"); got != "err:one\nerr:two\n" {
		t.Errorf("stderr log = %q", got)
	}

	// The end of the attach's stdin closes the session's: it ends, and the
	// attach exits with its status.
	a = e.start("vm", "session", "attach", "s", "echo")
	a.send("three")
	a.expect("out:three")
	a.stdin.Close()
	if code := a.wait(); code != 0 {
		t.Errorf("attach after closing stdin: exit %d; want the session's 0 (stderr %q)", code, a.stderr)
	}
	if s := e.session("s", "echo"); s.State != api.SessionExited || s.Exit == nil || s.Exit.Code != 0 {
		t.Errorf("session after its stdin closed = %+v; want exited 0", s)
	}

	// stop: SIGTERM, then SIGKILL after the timeout for a process that
	// ignores SIGTERM.
	e.ok("vm", "session", "start", "s", "--name", "polite", "--", "sleep", "600")
	e.ok("vm", "session", "start", "s", "--name", "stubborn", "--", "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
	e.waitLog("s", "stubborn", "ready") // SIGTERM is ignored from here on
	if out := e.ok("vm", "session", "stop", "s", "polite"); !strings.Contains(out, "SIGTERM") {
		t.Errorf("stop polite: %q; want it ended by SIGTERM", out)
	}
	t0 := time.Now()
	if out := e.ok("vm", "session", "stop", "s", "stubborn", "--timeout", "2s"); !strings.Contains(out, "SIGKILL") {
		t.Errorf("stop stubborn: %q; want it ended by SIGKILL after the timeout", out)
	}
	t.Logf("stop of a session ignoring SIGTERM with --timeout 2s took %s", time.Since(t0).Round(100*time.Millisecond))

	// kill: a signal, KILL by default, without waiting.
	e.ok("vm", "session", "start", "s", "--name", "victim", "--", "sleep", "600")
	e.ok("vm", "session", "kill", "s", "victim")
	if s := waitSessionDone(t, e, "s", "victim"); s.Exit == nil || s.Exit.Signal != "KILL" {
		t.Errorf("killed session = %+v; want ended by KILL", s)
	}
	list := e.ok("vm", "session", "list", "s")
	for _, want := range []string{"echo", "polite", "stubborn", "victim", "SIGKILL"} {
		if !strings.Contains(list, want) {
			t.Errorf("session list does not show %q:\n%s", want, list)
		}
	}
	e.ok("vm", "session", "rm", "s", "victim")
	if _, _, code := e.run("vm", "session", "show", "s", "victim"); code == 0 {
		t.Error("a removed session is still shown")
	}
}

// waitLog polls a session's stdout until it holds want.
func (e *env) waitLog(vm, name, want string) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(e.ok("vm", "session", "logs", vm, name), want) {
		if time.Now().After(deadline) {
			e.t.Fatalf("session %s never printed %q", name, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
