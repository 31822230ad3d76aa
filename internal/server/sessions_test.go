package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
	"banger/internal/daemon/daemontest"
)

func serve(t *testing.T) (*daemontest.World, *client.Client) {
	t.Helper()
	w := daemontest.New(t, nil)
	sock, err := Listen(w.Layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	return w, client.New(w.Layout.SocketPath)
}

// TestSessionRoutes drives the session, attach and exec routes through the
// typed client over the real socket (the fake driver's guest is this host).
func TestSessionRoutes(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")

	s, err := cl.StartSession(ctx, "dev", api.StartSessionRequest{
		Name: "cat", Argv: []string{"sh", "-c", "cat; echo done >&2"}, StdinMode: api.SessionPipe,
	})
	if err != nil || s.State != api.SessionRunning {
		t.Fatalf("StartSession = %+v, %v", s, err)
	}
	if _, err := cl.StartSession(ctx, "dev", api.StartSessionRequest{Name: "x", Argv: []string{"no-such-cmd"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("preflight failure over the API: %v; want not found", err)
	}
	conn, b, err := cl.AttachSession(ctx, "dev", "cat", api.AttachRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Protocol != api.StdioMuxV1 || b.Session == nil {
		t.Errorf("attach answer = %+v", b)
	}
	if _, _, err := cl.AttachSession(ctx, "dev", "cat", api.AttachRequest{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second attach over the API: %v; want a conflict", err)
	}
	payload := []byte("binary \x00\x01\xff safe\n")
	conn.Write(payload)
	conn.CloseStdin()
	var stdout, stderr bytes.Buffer
	end, err := conn.Output(&stdout, &stderr)
	if err != nil || end.Exit == nil || end.Exit.Code != 0 {
		t.Fatalf("attach end = %+v, %v", end, err)
	}
	if !bytes.Equal(stdout.Bytes(), payload) || stderr.String() != "done\n" {
		t.Errorf("attach output = %q / %q", stdout.Bytes(), stderr.String())
	}
	var logs bytes.Buffer
	if err := cl.SessionLogs(ctx, "dev", "cat", "stdout", true, &logs); err != nil || !bytes.Equal(logs.Bytes(), payload) {
		t.Errorf("logs = %q, %v", logs.Bytes(), err)
	}
	if err := cl.SessionLogs(ctx, "dev", "cat", "both", false, &logs); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("logs of an unknown stream: %v; want invalid", err)
	}
	if ss, err := cl.Sessions(ctx, "dev"); err != nil || len(ss) != 1 || ss[0].State != api.SessionExited {
		t.Errorf("Sessions = %+v, %v", ss, err)
	}
	if err := cl.RemoveSession(ctx, "dev", "cat"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Session(ctx, "dev", "cat"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removed session: %v; want not found", err)
	}

	ex, err := cl.Exec(ctx, "dev", api.ExecRequest{Argv: []string{"sh", "-c", "read l; echo got:$l; exit 5"}})
	if err != nil {
		t.Fatal(err)
	}
	ex.Write([]byte("x\n"))
	stdout.Reset()
	end, err = ex.Output(&stdout, &stderr)
	if err != nil || end.Exit == nil || end.Exit.Code != 5 || stdout.String() != "got:x\n" {
		t.Errorf("exec = %+v, %q, %v; want exit 5 after got:x", end, stdout.String(), err)
	}
}

func TestWorkspaceRoute(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	repo := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"config", "user.email", "t@x"}, {"config", "user.name", "t"}} {
		exec.Command("git", append([]string{"-C", repo}, args...)...).Run()
	}
	os.WriteFile(filepath.Join(repo, "f.txt"), []byte("x\n"), 0o644)
	target := filepath.Join(t.TempDir(), "repo")
	var steps []string
	ws, err := cl.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: target}, func(ev api.Event) {
		if ev.Message != "" {
			steps = append(steps, ev.Step)
		}
	})
	if err != nil || ws.GuestPath != target {
		t.Fatalf("PrepareWorkspace = %+v, %v", ws, err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "f.txt")); string(got) != "x\n" {
		t.Errorf("f.txt = %q", got)
	}
	if strings.Join(steps, ",") != "scan,copy,finalize" {
		t.Errorf("streamed steps = %v", steps)
	}
	if _, err := cl.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: "/"}, nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("prepare into /: %v; want invalid", err)
	}
}
