package guestagent_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

func findSession(t *testing.T, ss []agentproto.Session, name string) agentproto.Session {
	t.Helper()
	for _, s := range ss {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("session %q not in %+v", name, ss)
	return agentproto.Session{}
}

func logsOf(t *testing.T, c *agentproto.Client, name, stream string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.SessionLogs(testCtx(t, 10*time.Second), agentproto.SessionLogsRequest{Name: name, Stream: stream}, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestSessionsAcrossHostReconnect(t *testing.T) {
	e := newEnv(t, guestConfig())
	c1 := e.connect()
	ctx := testCtx(t, 60*time.Second)

	if _, err := c1.StartSession(ctx, agentproto.SessionStart{Name: "bg", Argv: []string{"sh", "-c", "echo out1; echo err1 >&2; exec sleep 1000"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.StartSession(ctx, agentproto.SessionStart{Name: "repl", Mode: agentproto.SessionPipe,
		Argv: []string{"sh", "-c", `while read l; do echo "got:$l"; done; echo stdin-closed`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.StartSession(ctx, agentproto.SessionStart{Name: "bg", Argv: []string{"true"}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("duplicate name: err = %v, want conflict", err)
	}

	// Logs by stream.
	waitFor(t, "bg output", 10*time.Second, func() bool { return logsOf(t, c1, "bg", agentproto.StreamStdout) == "out1\n" })
	if got := logsOf(t, c1, "bg", agentproto.StreamStderr); got != "err1\n" {
		t.Errorf("stderr log = %q, want err1", got)
	}

	// Attach to the pipe session, write, read.
	var out1 syncBuffer
	a1, err := c1.AttachSession(ctx, agentproto.SessionAttachRequest{Name: "repl"}, &out1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a1.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "got:a", 10*time.Second, func() bool { return strings.Contains(out1.String(), "got:a") })

	// Attach is exclusive, even from another connection.
	c2 := e.connect()
	if _, err := c2.AttachSession(ctx, agentproto.SessionAttachRequest{Name: "repl"}, nil, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second attach: err = %v, want conflict", err)
	}

	// The host goes away without detaching: a new connection sees the same
	// sessions, the pipe still open, and may attach again.
	c1.Close()
	c3 := e.connect()
	var ss []agentproto.Session
	waitFor(t, "the old attachment to be released", 10*time.Second, func() bool {
		ss, err = c3.Sessions(ctx)
		return err == nil && !findSession(t, ss, "repl").Attached
	})
	for _, name := range []string{"bg", "repl"} {
		if s := findSession(t, ss, name); s.State != agentproto.SessionRunning {
			t.Errorf("%s after reconnect: %+v, want running", name, s)
		}
	}
	if !findSession(t, ss, "repl").StdinOpen {
		t.Error("repl lost its stdin pipe when the host disconnected")
	}
	var out3 syncBuffer
	a3, err := c3.AttachSession(ctx, agentproto.SessionAttachRequest{Name: "repl", Replay: true}, &out3, nil)
	if err != nil {
		t.Fatal(err)
	}
	a3.Write([]byte("b\n"))
	waitFor(t, "got:b", 10*time.Second, func() bool { return strings.Contains(out3.String(), "got:a\ngot:b\n") })
	if err := a3.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	exit, err := a3.Wait()
	if err != nil || exit == nil || !exit.Success() {
		t.Fatalf("attachment ended with %v, %v; want exit 0", exit, err)
	}
	if !strings.HasSuffix(out3.String(), "stdin-closed\n") {
		t.Errorf("attached output = %q, want it to end with stdin-closed", out3.String())
	}
}

func TestSessionStopAndKill(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 60*time.Second)
	start := func(name, script string) {
		t.Helper()
		if _, err := c.StartSession(ctx, agentproto.SessionStart{Name: name, Argv: []string{"sh", "-c", script}}); err != nil {
			t.Fatal(err)
		}
	}
	start("polite", "echo up; exec sleep 1000")
	start("stubborn", `trap '' TERM; echo up; while :; do sleep 0.05; done`)
	start("victim", "echo up; exec sleep 1000")
	for _, n := range []string{"polite", "stubborn", "victim"} {
		waitFor(t, n+" to start", 10*time.Second, func() bool { return logsOf(t, c, n, agentproto.StreamStdout) == "up\n" })
	}

	s, err := c.StopSession(ctx, agentproto.SessionStopRequest{Name: "polite", Timeout: 5 * time.Second})
	if err != nil || s.State != agentproto.SessionExited || s.Exit == nil || s.Exit.Signal != "TERM" {
		t.Errorf("stop polite = %+v (exit %+v), %v; want exited by TERM", s, s.Exit, err)
	}
	begin := time.Now()
	s, err = c.StopSession(ctx, agentproto.SessionStopRequest{Name: "stubborn", Timeout: 300 * time.Millisecond})
	if err != nil || s.Exit == nil || s.Exit.Signal != "KILL" {
		t.Errorf("stop stubborn = %+v, %v; want KILL after the timeout", s.Exit, err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Errorf("stop escalated after %s, before the 300ms timeout", d)
	}

	if err := c.RemoveSession(ctx, "victim"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("removing a running session: err = %v, want conflict", err)
	}
	if err := c.KillSession(ctx, agentproto.SessionKillRequest{Name: "victim", Signal: "INT"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "victim to die", 10*time.Second, func() bool {
		ss, _ := c.Sessions(ctx)
		v := findSession(t, ss, "victim")
		return v.State == agentproto.SessionExited && v.Exit != nil && v.Exit.Signal == "INT"
	})
	if err := c.RemoveSession(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	if err := c.KillSession(ctx, agentproto.SessionKillRequest{Name: "victim"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("kill after remove: err = %v, want not found", err)
	}
}

func TestSessionLogsFollowUntilExit(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 30*time.Second)
	if _, err := c.StartSession(ctx, agentproto.SessionStart{Name: "count", Argv: []string{"sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done; echo bye >&2"}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.SessionLogs(ctx, agentproto.SessionLogsRequest{Name: "count", Follow: true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\n2\n3\n" {
		t.Errorf("followed stdout = %q, want 1 2 3", out.String())
	}
	var tail bytes.Buffer
	if err := c.SessionLogs(ctx, agentproto.SessionLogsRequest{Name: "count", Offset: 2}, &tail); err != nil || tail.String() != "2\n3\n" {
		t.Errorf("stdout from offset 2 = %q, %v", tail.String(), err)
	}
}

func TestSessionsSurviveAgentRestart(t *testing.T) {
	paths := testPaths(t)
	e1 := newEnv(t, guestagent.Config{Paths: paths})
	c1 := e1.connect()
	ctx := testCtx(t, 30*time.Second)
	if _, err := c1.StartSession(ctx, agentproto.SessionStart{Name: "lasting", Argv: []string{"sleep", "1000"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.StartSession(ctx, agentproto.SessionStart{Name: "short", Argv: []string{"sh", "-c", "exit 4"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "short to end", 10*time.Second, func() bool {
		ss, _ := c1.Sessions(ctx)
		return findSession(t, ss, "short").State == agentproto.SessionExited
	})
	c1.Close()
	e1.srv.Close()

	c2 := newEnv(t, guestagent.Config{Paths: paths}).connect()
	ss, err := c2.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := findSession(t, ss, "lasting"); s.State != agentproto.SessionRunning || s.Note == "" {
		t.Errorf("lasting after restart = %+v, want running and adopted with a note", s)
	}
	if s := findSession(t, ss, "short"); s.Exit == nil || s.Exit.Code != 4 {
		t.Errorf("short after restart = %+v, want its recorded exit 4", s)
	}
	s, err := c2.StopSession(ctx, agentproto.SessionStopRequest{Name: "lasting"})
	if err != nil || s.State != agentproto.SessionExited {
		t.Errorf("stopping an adopted session = %+v, %v", s, err)
	}
}
