package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/daemon/guestops"
)

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testRepo is a repository with a commit, an uncommitted edit, an untracked
// and an ignored file.
func testRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "config", "user.email", "t@example.com")
	gitIn(t, dir, "config", "user.name", "T")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("*.log\n"), 0o644)
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "init")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a, edited\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.log"), []byte("ignored\n"), 0o644)
	return dir
}

func TestPrepareWorkspace(t *testing.T) {
	for _, tools := range []guestops.Tools{{Untar: true, Git: true}, {Untar: true}, {}} {
		t.Run(fmt.Sprintf("untar=%v,git=%v", tools.Untar, tools.Git), func(t *testing.T) {
			testPrepareWorkspace(t, tools)
		})
	}
}

func testPrepareWorkspace(t *testing.T, tools guestops.Tools) {
	w := newWorld(t)
	w.D.ProbeTools = func(context.Context, *agentproto.Client) guestops.Tools { return tools }
	ctx := context.Background()
	w.create("dev")
	repo := testRepo(t)
	// The fake guest is this host: the guest path is a scratch directory.
	target := filepath.Join(t.TempDir(), "ws", "repo")
	var steps []string
	ws, err := w.D.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: target, Branch: "topic"}, func(ev api.Event) {
		if ev.Message != "" {
			steps = append(steps, ev.Step)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if ws.GuestPath != target || ws.Mode != api.WorkspaceShallow || ws.Branch != "topic" || ws.Files == 0 || ws.Wire == 0 {
		t.Errorf("workspace = %+v", ws)
	}
	if got := strings.Join(steps, ","); got != "scan,copy,finalize" {
		t.Errorf("progress steps = %s; want scan,copy,finalize", got)
	}
	if got := gitIn(t, target, "status", "--porcelain"); got != " M a.txt\n?? new.txt\n" {
		t.Errorf("guest git status = %q", got)
	}
	if got := strings.TrimSpace(gitIn(t, target, "branch", "--show-current")); got != "topic" {
		t.Errorf("guest branch = %q; want topic", got)
	}
	if _, err := os.Stat(filepath.Join(target, "x.log")); !os.IsNotExist(err) {
		t.Error("an ignored file was copied")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".repo.banger-*"))
	if len(leftovers) != 0 {
		t.Errorf("leftovers next to the target: %v", leftovers)
	}
}

func TestPrepareWorkspaceRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	repo := testRepo(t)
	target := filepath.Join(t.TempDir(), "repo")
	cases := []struct {
		req  api.WorkspacePrepareRequest
		want string
	}{
		{api.WorkspacePrepareRequest{Path: "rel/path", GuestPath: target}, "absolute"},
		{api.WorkspacePrepareRequest{Path: repo, GuestPath: "/root"}, "system directory"},
		{api.WorkspacePrepareRequest{Path: repo, GuestPath: target, From: "HEAD"}, "--branch"},
		{api.WorkspacePrepareRequest{Path: repo, GuestPath: target, Branch: "bad..name"}, "branch name"},
		{api.WorkspacePrepareRequest{Path: repo, GuestPath: target, Mode: "rsync"}, "mode"},
		{api.WorkspacePrepareRequest{Path: t.TempDir(), GuestPath: target}, "not inside a git work tree"},
	}
	for _, tc := range cases {
		_, err := w.D.PrepareWorkspace(ctx, "dev", tc.req, nil)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PrepareWorkspace(%+v) = %v; want invalid mentioning %q", tc.req, err, tc.want)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Error("a refused prepare created the target")
	}
	// A failing guest step leaves no staging directory behind: a branch
	// that already exists makes 'git checkout -b' fail.
	_, err := w.D.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: target, Branch: "main"}, nil)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("branching to the current branch's name: %v; want git's 'already exists'", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".repo.banger-*"))
	if len(leftovers) != 0 {
		t.Errorf("a failed prepare left %v", leftovers)
	}
}
