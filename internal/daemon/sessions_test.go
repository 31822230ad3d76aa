package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
)

// lineEcho answers every input line on stdout and stderr.
var lineEcho = []string{"sh", "-c", `while read -r l; do echo "out:$l"; echo "err:$l" >&2; done; echo bye`}

// attached is a test client on an attach or exec bridge.
type attached struct {
	t     *testing.T
	conn  *stdiomux.Conn
	lines chan string // output lines, stdout and stderr; closed at the end
	end   chan stdiomux.End
}

func dialBridge(t *testing.T, conn *stdiomux.Conn) *attached {
	t.Helper()
	pr, pw := io.Pipe()
	a := &attached{t: t, conn: conn, lines: make(chan string, 1000), end: make(chan stdiomux.End, 1)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	go func() {
		end, err := conn.Output(pw, pw)
		pw.Close()
		if err != nil {
			end.Error = &api.Error{Message: err.Error()}
		}
		a.end <- end
	}()
	t.Cleanup(func() { conn.Close() })
	return a
}

func (a *attached) attach(w *world, vm, name string) *attached {
	a.t.Helper()
	b, err := w.D.AttachSession(context.Background(), vm, name, api.AttachRequest{})
	if err != nil {
		a.t.Fatalf("attaching to %s: %v", name, err)
	}
	conn, err := stdiomux.Dial(context.Background(), b.Socket)
	if err != nil {
		a.t.Fatal(err)
	}
	return dialBridge(a.t, conn)
}

func attach(t *testing.T, w *world, vm, name string) *attached {
	return (&attached{t: t}).attach(w, vm, name)
}

// say sends a line and waits for the echo.
func (a *attached) say(line string) {
	a.t.Helper()
	if _, err := a.conn.Write([]byte(line + "\n")); err != nil {
		a.t.Fatal(err)
	}
	a.expect("out:" + line)
}

// expect reads output lines until want.
func (a *attached) expect(want string) {
	a.t.Helper()
	for got := range a.lines {
		if got == want {
			return
		}
	}
	a.t.Fatalf("output ended before %q", want)
}

func TestSessionAttachSurvivesDaemonRestart(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	s, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "echo", Argv: lineEcho, StdinMode: api.SessionPipe})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != api.SessionRunning || s.StdinMode != api.SessionPipe || !s.StdinOpen || s.VM != "dev" {
		t.Errorf("started session = %+v", s)
	}

	a := attach(t, w, "dev", "echo")
	if !a.conn.Hello().Stdin || a.conn.Hello().Session == nil || a.conn.Hello().Session.Name != "echo" {
		t.Errorf("hello = %+v; want stdin and the session", a.conn.Hello())
	}
	a.say("one")
	if _, err := w.D.AttachSession(ctx, "dev", "echo", api.AttachRequest{}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("second attach: %v; want a conflict saying it is already attached", err)
	}

	// The daemon goes away (its bridges and agent connections with it) and
	// comes back: the session is still there, with its stdin.
	w.restart()
	if end := <-a.end; end.Exit != nil {
		t.Errorf("the first client saw the session end (%+v) when the daemon restarted", end)
	}
	a = attach(t, w, "dev", "echo")
	a.say("two")
	if err := a.conn.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	a.expect("bye")
	if end := <-a.end; end.Exit == nil || end.Exit.Code != 0 {
		t.Errorf("end after closing stdin = %+v; want exit 0", end)
	}

	for stream, want := range map[string]string{"stdout": "out:one\nout:two\nbye\n", "stderr": "err:one\nerr:two\n"} {
		var buf bytes.Buffer
		if err := w.D.SessionLogs(ctx, "dev", "echo", api.SessionLogsRequest{Stream: stream}, &buf); err != nil || buf.String() != want {
			t.Errorf("%s log = %q, %v; want %q", stream, buf.String(), err, want)
		}
	}
	got, err := w.D.Session(ctx, "dev", "echo")
	if err != nil || got.State != api.SessionExited || got.Exit == nil || got.Exit.Code != 0 {
		t.Errorf("session after exit = %+v, %v", got, err)
	}
}

func TestSessionDetachKeepsItRunning(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	if _, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "echo", Argv: lineEcho, StdinMode: api.SessionPipe}); err != nil {
		t.Fatal(err)
	}
	a := attach(t, w, "dev", "echo")
	a.say("before")
	a.conn.Detach()
	if end := <-a.end; !end.Detached {
		t.Errorf("end after detach = %+v; want detached", end)
	}
	a = attach(t, w, "dev", "echo")
	a.say("after")
	s, _ := w.D.Session(ctx, "dev", "echo")
	if s.State != api.SessionRunning || !s.Attached {
		t.Errorf("session after a detach and a new attach = %+v; want running and attached", s)
	}
}

func TestSessionPreflight(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	dir := t.TempDir()
	cases := []struct {
		req  api.StartSessionRequest
		kind error
		want []string
	}{
		{api.StartSessionRequest{Name: "a", Argv: []string{"sleep", "1"}, Cwd: dir + "/missing"}, errdefs.ErrNotFound, []string{"missing does not exist", "--cwd"}},
		{api.StartSessionRequest{Name: "a", Argv: []string{"no-such-agent-cli"}}, errdefs.ErrNotFound, []string{"no-such-agent-cli", "PATH"}},
		{api.StartSessionRequest{Name: "a", Argv: []string{"sleep", "1"}, RequireCommands: []string{"sh", "no-such-tool"}}, errdefs.ErrNotFound, []string{"no-such-tool"}},
		{api.StartSessionRequest{Name: "a", Argv: []string{"sleep", "1"}, StdinMode: "tty"}, errdefs.ErrInvalid, []string{"--stdin-mode"}},
		{api.StartSessionRequest{Name: "a"}, errdefs.ErrInvalid, []string{"no command"}},
		{api.StartSessionRequest{Name: "a", Argv: []string{"sleep"}, Cwd: "rel"}, errdefs.ErrInvalid, []string{"absolute"}},
	}
	for _, tc := range cases {
		_, err := w.D.StartSession(ctx, "dev", tc.req)
		if !errors.Is(err, tc.kind) {
			t.Errorf("StartSession(%+v) = %v; want %v", tc.req, err, tc.kind)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("StartSession(%+v) error %q does not mention %q", tc.req, err, want)
			}
		}
	}
	if ss, err := w.D.Sessions(ctx, "dev"); err != nil || len(ss) != 0 {
		t.Errorf("sessions after failed preflights = %+v, %v; want none", ss, err)
	}
	if _, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "ok", Argv: []string{"sleep", "60"}, Cwd: dir, RequireCommands: []string{"sh"}}); err != nil {
		t.Fatalf("a session that passes preflight: %v", err)
	}
	if _, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "ok", Argv: []string{"sleep", "60"}}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "session rm") {
		t.Errorf("a second session of the same name: %v; want a conflict pointing to session rm", err)
	}
	if _, err := w.D.Session(ctx, "dev", "nope"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "session list") {
		t.Errorf("unknown session: %v", err)
	}
}

func TestSessionStopKillRemove(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	start := func(name string, argv ...string) {
		t.Helper()
		if _, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: name, Argv: argv}); err != nil {
			t.Fatal(err)
		}
	}
	start("polite", "sleep", "600")
	start("stubborn", "sh", "-c", `trap "" TERM; sleep 600`)
	start("victim", "sleep", "600")

	s, err := w.D.StopSession(ctx, "dev", "polite", 5*time.Second)
	if err != nil || s.State != api.SessionExited || s.Exit == nil || s.Exit.Signal != "TERM" {
		t.Errorf("stop of a session that takes SIGTERM = %+v, %v; want ended by TERM", s, err)
	}
	s, err = w.D.StopSession(ctx, "dev", "stubborn", 200*time.Millisecond)
	if err != nil || s.State != api.SessionExited || s.Exit == nil || s.Exit.Signal != "KILL" {
		t.Errorf("stop of a session ignoring SIGTERM = %+v, %v; want ended by KILL after the timeout", s, err)
	}
	if err := w.D.RemoveSession(ctx, "dev", "victim"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "session stop") {
		t.Errorf("removing a running session: %v; want a conflict pointing to stop", err)
	}
	if err := w.D.KillSession(ctx, "dev", "victim", ""); err != nil {
		t.Fatal(err)
	}
	waitSession(t, w, "dev", "victim", func(s api.Session) bool {
		return s.State == api.SessionExited && s.Exit != nil && s.Exit.Signal == "KILL"
	})
	if err := w.D.RemoveSession(ctx, "dev", "victim"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.Session(ctx, "dev", "victim"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removed session still there: %v", err)
	}
	if err := w.D.KillSession(ctx, "dev", "victim", ""); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "session list") {
		t.Errorf("killing an unknown session: %v", err)
	}
}

func TestExecBridge(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	exec := func(argv ...string) *attached {
		t.Helper()
		b, err := w.D.Exec(ctx, "dev", api.ExecRequest{Argv: argv})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := stdiomux.Dial(ctx, b.Socket)
		if err != nil {
			t.Fatal(err)
		}
		return dialBridge(t, conn)
	}
	a := exec("sh", "-c", `while read -r l; do echo "out:$l"; done; exit 3`)
	a.say("ping")
	a.conn.CloseStdin()
	if end := <-a.end; end.Exit == nil || end.Exit.Code != 3 {
		t.Errorf("exec end = %+v; want exit 3", end)
	}

	// A client that leaves kills the process.
	marker := filepath.Join(t.TempDir(), "pid")
	a = exec("sh", "-c", `echo $$ > `+marker+`; echo started; exec sleep 600`)
	a.expect("started")
	a.conn.Close()
	pidText, _ := os.ReadFile(marker)
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(strings.TrimSpace(string(pidText))) {
		if time.Now().After(deadline) {
			t.Fatal("the exec'd process outlived its client")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func processAlive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitSession(t *testing.T, w *world, vm, name string, ok func(api.Session) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := w.D.Session(context.Background(), vm, name)
		if err == nil && ok(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s = %+v (%v); condition never held", name, s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The fake VMM's guest behaves as a real one here: its sessions end with
// the VM (and a test's sleep does not outlive the test).
func TestSessionsEndWithTheFakeVM(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	s, err := w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "long", Argv: []string{"sleep", "600"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.PID <= 0 || syscall.Kill(s.PID, 0) != nil {
		t.Fatalf("session = %+v, not running", s)
	}
	if _, err := w.D.StopVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(s.PID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("session process %d outlived its VM", s.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
