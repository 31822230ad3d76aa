package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// TestExportWorkspace prepares a workspace in a fake guest (a directory
// on this host, where real git runs), works in it, and exports it.
func TestExportWorkspace(t *testing.T) {
	for _, mode := range []string{api.WorkspaceShallow, api.WorkspaceFullCopy} {
		t.Run(mode, func(t *testing.T) { testExportWorkspace(t, mode) })
	}
}

func testExportWorkspace(t *testing.T, mode string) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	repo := testRepo(t)
	target := filepath.Join(t.TempDir(), "ws", "repo")
	if _, err := w.D.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: target, Mode: mode}, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "guest.txt"), []byte("made in the guest\n"), 0o644)
	gitIn(t, target, "add", "guest.txt")
	gitIn(t, target, "-c", "user.name=G", "-c", "user.email=g@example.com", "commit", "-q", "-m", "guest work")
	os.WriteFile(filepath.Join(target, "a.txt"), []byte("a, edited in the guest\n"), 0o644)
	os.WriteFile(filepath.Join(target, "fresh.txt"), []byte("untracked\n"), 0o644)
	guestBefore := gitIn(t, target, "status", "--porcelain") + gitIn(t, target, "rev-parse", "HEAD")
	hostBefore := gitIn(t, repo, "status", "--porcelain") + gitIn(t, repo, "rev-parse", "--symbolic-full-name", "HEAD")

	var steps []string
	ex, err := w.D.ExportWorkspace(ctx, "dev", api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target}, func(ev api.Event) {
		if ev.Message != "" {
			steps = append(steps, ev.Step)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Branch != "banger/dev" || ex.Commits != 1 || !ex.Uncommitted || ex.Bytes == 0 || ex.Base != strings.TrimSpace(gitIn(t, repo, "rev-parse", "HEAD")) {
		t.Errorf("export = %+v", ex)
	}
	if got := strings.Join(steps, ","); got != "snapshot,copy,import" {
		t.Errorf("progress steps = %s; want snapshot,copy,import", got)
	}
	if got := strings.TrimSpace(gitIn(t, repo, "rev-parse", "banger/dev")); got != ex.Commit {
		t.Errorf("banger/dev = %s; want %s", got, ex.Commit)
	}
	// The branch holds the guest's work tree: what was committed, the
	// edit and the untracked file; not the host's own uncommitted work.
	if got := gitIn(t, repo, "ls-tree", "-r", "--name-only", "banger/dev"); got != ".gitignore\na.txt\nfresh.txt\nguest.txt\nnew.txt\n" {
		t.Errorf("branch files:\n%s", got)
	}
	if got := gitIn(t, repo, "show", "banger/dev:a.txt"); got != "a, edited in the guest\n" {
		t.Errorf("a.txt on the branch = %q", got)
	}
	if got := gitIn(t, target, "status", "--porcelain") + gitIn(t, target, "rev-parse", "HEAD"); got != guestBefore {
		t.Errorf("guest changed: %q; was %q", got, guestBefore)
	}
	if got := gitIn(t, repo, "status", "--porcelain") + gitIn(t, repo, "rev-parse", "--symbolic-full-name", "HEAD"); got != hostBefore {
		t.Errorf("host changed: %q; was %q", got, hostBefore)
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "banger-export-*.bundle")); len(left) != 0 {
		t.Errorf("bundles left on the host: %v", left)
	}

	// Again: the branch exists now.
	_, err = w.D.ExportWorkspace(ctx, "dev", api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second export: %v; want a conflict naming --force", err)
	}
	os.WriteFile(filepath.Join(target, "more.txt"), []byte("more\n"), 0o644)
	ex2, err := w.D.ExportWorkspace(ctx, "dev", api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target, Force: true}, nil)
	if err != nil || ex2.Replaced != ex.Commit {
		t.Fatalf("forced export = %+v, %v; want it to replace %s", ex2, err, ex.Commit)
	}
	if got := gitIn(t, repo, "show", "banger/dev:more.txt"); got != "more\n" {
		t.Errorf("forced export misses more.txt: %q", got)
	}
}

func TestExportWorkspaceRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	repo := testRepo(t)
	target := filepath.Join(t.TempDir(), "repo")
	if _, err := w.D.PrepareWorkspace(ctx, "dev", api.WorkspacePrepareRequest{Path: repo, GuestPath: target}, nil); err != nil {
		t.Fatal(err)
	}
	// Drop the uncommitted work the host had: nothing new in the guest.
	gitIn(t, target, "add", "-A")
	gitIn(t, target, "reset", "-q", "--hard")
	for _, tc := range []struct {
		req  api.WorkspaceExportRequest
		kind error
		want string
	}{
		{api.WorkspaceExportRequest{RepoPath: "rel", GuestPath: target}, errdefs.ErrInvalid, "absolute"},
		{api.WorkspaceExportRequest{RepoPath: repo, GuestPath: "root/repo"}, errdefs.ErrInvalid, "absolute"},
		{api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target, Branch: "main", Force: true}, errdefs.ErrConflict, "checked out"},
		{api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target + "-missing"}, errdefs.ErrNotFound, "not a git checkout"},
		{api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target}, errdefs.ErrConflict, "nothing to export"},
	} {
		_, err := w.D.ExportWorkspace(ctx, "dev", tc.req, nil)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExportWorkspace(%+v) = %v; want %v mentioning %q", tc.req, err, tc.kind, tc.want)
		}
	}
	gitIn(t, target, "-c", "user.name=G", "-c", "user.email=g@example.com", "commit", "-q", "--amend", "-m", "rewritten")
	_, err := w.D.ExportWorkspace(ctx, "dev", api.WorkspaceExportRequest{RepoPath: repo, GuestPath: target}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("export after an amend: %v; want a conflict saying the history was rewritten", err)
	}
	if out := gitIn(t, repo, "branch", "--list", "banger/*"); out != "" {
		t.Errorf("refused exports left branches: %s", out)
	}
}
