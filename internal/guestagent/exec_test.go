package guestagent_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

func TestExecPipesStdinStdoutStderrExitCode(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	var stdout, stderr syncBuffer
	st, err := c.Run(testCtx(t, 10*time.Second), agentproto.ExecRequest{
		Argv: []string{"sh", "-c", `read x; echo "out:$x"; echo "err:$x" >&2; cat; exit 7`},
	}, agentproto.Stdio{Stdin: strings.NewReader("hello\nrest of stdin\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st, (agentproto.ExitStatus{Code: 7}); got != want {
		t.Errorf("exit = %+v, want %+v", got, want)
	}
	if got, want := stdout.String(), "out:hello\nrest of stdin\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := stderr.String(), "err:hello\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestExecWithoutStdinGetsDevNull(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	var out syncBuffer
	st, err := c.Run(testCtx(t, 10*time.Second), agentproto.ExecRequest{Argv: []string{"cat"}}, agentproto.Stdio{Stdout: &out})
	if err != nil || !st.Success() || out.String() != "" {
		t.Fatalf("cat without stdin = %+v, %v, output %q; want success with no output", st, err, out.String())
	}
}

func TestExecEnvDirUser(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	var out syncBuffer
	req := agentproto.ExecRequest{Argv: []string{"sh", "-c", `echo "$FOO"; pwd; id -un`}, Env: []string{"FOO=bar baz"}, Dir: "/tmp"}
	if isRoot() && hasUser("nobody") {
		req.User = "nobody"
	}
	if _, err := c.Run(testCtx(t, 10*time.Second), req, agentproto.Stdio{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	want := "bar baz\n/tmp\n" + orDefault(req.User, currentUser()) + "\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestExecNotFound(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	_, err := c.Run(testCtx(t, 10*time.Second), agentproto.ExecRequest{Argv: []string{"no-such-binary-xyz"}}, agentproto.Stdio{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestExecPTYTtyAndResize(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 20*time.Second)
	var out syncBuffer
	if _, err := c.Run(ctx, agentproto.ExecRequest{Argv: []string{"tty"}, TTY: true}, agentproto.Stdio{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "/dev/pts/") {
		t.Fatalf("tty printed %q, want /dev/pts/N", out.String())
	}

	out = syncBuffer{}
	p, err := c.Start(ctx, agentproto.ExecRequest{
		Argv: []string{"sh", "-c", `stty size; while [ "$(stty size)" != "40 120" ]; do sleep 0.05; done; echo "resized $TERM"`},
		TTY:  true, Rows: 24, Cols: 80,
	}, agentproto.Stdio{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "initial size", 10*time.Second, func() bool { return strings.Contains(out.String(), "24 80") })
	if err := p.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	if !strings.Contains(out.String(), "resized xterm-256color") {
		t.Errorf("output = %q, want it to contain the resize and TERM", out.String())
	}
}

func TestExecSignal(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	var out syncBuffer
	p, err := c.Start(testCtx(t, 20*time.Second), agentproto.ExecRequest{
		Argv: []string{"sh", "-c", `trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done`},
	}, agentproto.Stdio{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", 10*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
	if err := p.Signal("TERM"); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 3 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("exit %+v output %q, want code 3 after got-term", st, out.String())
	}

	p, err = c.Start(testCtx(t, 20*time.Second), agentproto.ExecRequest{Argv: []string{"sleep", "1000"}}, agentproto.Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	p.Signal("KILL")
	if st, err := p.Wait(); err != nil || st.Signal != "KILL" || st.Code != -1 {
		t.Errorf("killed sleep = %+v, %v; want signal KILL", st, err)
	}
}

func TestExecCancelKillsProcessGroup(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	p, err := c.Start(ctx, agentproto.ExecRequest{Argv: []string{"sh", "-c", `sleep 1000 & echo $!; wait`}}, agentproto.Stdio{Stdout: pw})
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 32)
	n, _ := pr.Read(line)
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("reading child pid: %q", line[:n])
	}
	go io.Copy(io.Discard, pr)
	cancel()
	if _, err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("wait after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, "the background sleep to die", 10*time.Second, func() bool { return processGone(pid) })
	// The connection is still fine.
	if _, err := c.Info(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestExecConcurrentCalls(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 30*time.Second)
	const n = 16
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]syncBuffer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Run(ctx, agentproto.ExecRequest{Argv: []string{"sh", "-c", "sleep 0.5; echo " + strconv.Itoa(i)}},
				agentproto.Stdio{Stdout: &outs[i]})
		}()
	}
	for range 4 { // simple calls interleave with the execs
		if _, err := c.Info(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || outs[i].String() != strconv.Itoa(i)+"\n" {
			t.Errorf("exec %d: %v, output %q", i, errs[i], outs[i].String())
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d concurrent 0.5s execs took %s; calls are not running concurrently", n, d)
	}
}
