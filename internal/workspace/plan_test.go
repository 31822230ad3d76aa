package workspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/api/errdefs"
)

// mixedRepo has a commit and then every kind of work tree state: modified,
// deleted, untracked, ignored, staged, a new staged file, an executable, and
// symlinks inside and outside the tree.
func mixedRepo(t *testing.T) *repo {
	r := newRepo(t)
	r.write("README.md", "hello\n", 0o644)
	r.write("src/main.go", "package main\n", 0o644)
	r.write("src/gone.go", "package gone\n", 0o644)
	r.write("staged.txt", "v1\n", 0o644)
	r.write("bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	r.write(".gitignore", "*.log\nbuild/\n", 0o644)
	r.symlink("../README.md", "src/readme-link")
	r.symlink("/etc/hostname", "hostname-link")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "first commit")
	r.write("README.md", "hello, edited\n", 0o644)
	os.Remove(filepath.Join(r.dir, "src/gone.go"))
	r.write("notes/untracked.txt", "new\n", 0o644)
	r.write("debug.log", "ignored\n", 0o644)
	r.write("build/out.bin", "ignored\n", 0o644)
	r.write("staged.txt", "v2\n", 0o644)
	r.write("added.txt", "added\n", 0o644)
	r.git("add", "staged.txt", "added.txt")
	return r
}

func TestShallowMatchesHost(t *testing.T) {
	for _, guestGit := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole tree", true: "changes and checkout"}[guestGit], func(t *testing.T) {
			testShallowMatchesHost(t, guestGit)
		})
	}
}

func testShallowMatchesHost(t *testing.T, guestGit bool) {
	r := mixedRepo(t)
	p := newPlan(t, Options{Path: filepath.Join(r.dir, "src"), GuestGit: guestGit})
	if p.Repo.Root != r.dir || p.Repo.Branch != "main" || p.Mode != ModeShallow || p.Checkout != guestGit {
		t.Errorf("plan repo = %+v mode %s checkout %v; want root %s on main, shallow", p.Repo, p.Mode, p.Checkout, r.dir)
	}
	if p.Files != 9 || (p.CheckedOut > 0) != guestGit {
		t.Errorf("plan counts %d files, %d checked out in the guest; want 9, some only with git in the guest", p.Files, p.CheckedOut)
	}
	staging := extract(t, p)
	target := filepath.Join(t.TempDir(), "repo")
	if out, err := finalize(t, Finalize{Staging: staging, Target: target, Links: p.Links}); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}

	want := []string{
		".gitignore", "README.md", "added.txt", "bin/", "bin/run.sh", "hostname-link@/etc/hostname",
		"notes/", "notes/untracked.txt", "src/", "src/main.go", "src/readme-link@../README.md", "staged.txt",
	}
	if diff := cmp.Diff(want, files(t, target)); diff != "" {
		t.Errorf("guest tree (-want +got):\n%s", diff)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "README.md")); string(got) != "hello, edited\n" {
		t.Errorf("README.md = %q; want the uncommitted edit", got)
	}
	if fi, _ := os.Stat(filepath.Join(target, "bin/run.sh")); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run.sh mode = %v; want 0755", fi)
	}
	for _, args := range [][]string{
		{"status", "--porcelain"},
		{"log", "-1", "--format=%H %s"},
		{"rev-parse", "--abbrev-ref", "HEAD"},
		{"diff", "--cached", "--stat"},
	} {
		if got, want := runGit(t, target, args...), r.git(args...); got != want {
			t.Errorf("git %s in the copy:\n%s\nwant (host):\n%s", strings.Join(args, " "), got, want)
		}
	}
	if got := strings.TrimSpace(runGit(t, target, "rev-parse", "--is-shallow-repository")); got != "true" {
		t.Errorf("copy is shallow = %s; want true", got)
	}
	if got := strings.TrimSpace(runGit(t, target, "rev-list", "--count", "HEAD")); got != "1" {
		t.Errorf("history depth = %s; want 1", got)
	}
}

func TestShallowKeepsRemotesAndDetachedHead(t *testing.T) {
	r := newRepo(t)
	r.write("a", "1\n", 0o644)
	r.git("add", "a")
	r.git("commit", "-q", "-m", "one")
	r.write("a", "2\n", 0o644)
	r.git("commit", "-q", "-am", "two")
	r.git("remote", "add", "origin", "https://example.com/app.git")
	first := strings.TrimSpace(r.git("rev-parse", "HEAD~1"))
	r.git("checkout", "-q", "--detach", first)

	p := newPlan(t, Options{Path: r.dir})
	if p.Repo.Branch != "" || p.Repo.Head != first {
		t.Fatalf("repo = %+v; want detached at %s", p.Repo, first)
	}
	copyDir := extract(t, p)
	if got := strings.TrimSpace(runGit(t, copyDir, "rev-parse", "HEAD")); got != first {
		t.Errorf("copy HEAD = %s; want %s", got, first)
	}
	if got := strings.TrimSpace(runGit(t, copyDir, "remote", "get-url", "origin")); got != "https://example.com/app.git" {
		t.Errorf("copy origin = %q", got)
	}
	if got := runGit(t, copyDir, "status", "--porcelain"); got != "" {
		t.Errorf("copy status = %q; want clean", got)
	}
}

func TestBranchFromAnotherCommit(t *testing.T) {
	r := newRepo(t)
	r.write("a", "1\n", 0o644)
	r.git("add", "a")
	r.git("commit", "-q", "-m", "one")
	r.git("tag", "v1")
	r.write("a", "2\n", 0o644)
	r.git("commit", "-q", "-am", "two")

	p := newPlan(t, Options{Path: r.dir, From: "v1"})
	if want := strings.TrimSpace(r.git("rev-parse", "v1")); p.From != want {
		t.Fatalf("plan.From = %s; want %s", p.From, want)
	}
	staging := extract(t, p)
	target := filepath.Join(t.TempDir(), "repo")
	if out, err := finalize(t, Finalize{Staging: staging, Target: target, Branch: "feature/x", From: p.From}); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(runGit(t, target, "rev-parse", "--abbrev-ref", "HEAD")); got != "feature/x" {
		t.Errorf("branch = %s; want feature/x", got)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "a")); string(got) != "1\n" {
		t.Errorf("a = %q; want the v1 content", got)
	}
	if _, err := NewPlan(context.Background(), Options{Path: r.dir, From: "nope"}); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--from") {
		t.Errorf("unknown --from: %v; want an invalid error naming --from", err)
	}
}

func TestSubmodulesNeedFullCopy(t *testing.T) {
	sub := newRepo(t)
	sub.write("lib.txt", "lib\n", 0o644)
	sub.git("add", "lib.txt")
	sub.git("commit", "-q", "-m", "lib")
	r := newRepo(t)
	r.write("main.txt", "main\n", 0o644)
	r.git("add", "main.txt")
	r.git("submodule", "add", "-q", sub.dir, "vendor/lib")
	r.git("commit", "-q", "-m", "with submodule")
	r.write("scratch.log", "ignored? no: no .gitignore\n", 0o644)

	_, err := NewPlan(context.Background(), Options{Path: r.dir})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--mode full_copy") {
		t.Fatalf("shallow plan of a repo with submodules: %v; want invalid pointing to --mode full_copy", err)
	}
	p := newPlan(t, Options{Path: r.dir, Mode: ModeFullCopy})
	copyDir := extract(t, p)
	if got := runGit(t, copyDir, "status", "--porcelain"); got != "?? scratch.log\n" {
		t.Errorf("full copy status = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(copyDir, "vendor/lib/lib.txt")); string(got) != "lib\n" {
		t.Errorf("submodule file = %q", got)
	}
	if got := runGit(t, copyDir, "submodule", "status"); !strings.Contains(got, "vendor/lib") || strings.HasPrefix(got, "-") {
		t.Errorf("submodule status in the copy = %q; want it checked out", got)
	}
}

func TestNotARepository(t *testing.T) {
	if _, err := NewPlan(context.Background(), Options{Path: t.TempDir()}); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "not inside a git work tree") {
		t.Errorf("plan outside a repo: %v", err)
	}
	if _, err := NewPlan(context.Background(), Options{Path: "/nonexistent/x"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("plan of a missing path: %v", err)
	}
	if _, err := NewPlan(context.Background(), Options{Path: t.TempDir(), Mode: "rsync"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestUnbornBranch(t *testing.T) {
	r := newRepo(t)
	r.write("first.txt", "x\n", 0o644)
	r.git("add", "first.txt")
	r.write("other.txt", "y\n", 0o644)
	p := newPlan(t, Options{Path: r.dir})
	copyDir := extract(t, p)
	if got, want := runGit(t, copyDir, "status", "--porcelain", "--branch"), r.git("status", "--porcelain", "--branch"); got != want {
		t.Errorf("unborn copy status = %q; want %q", got, want)
	}
}

func TestCheckoutOnlyWhenExact(t *testing.T) {
	r := newRepo(t)
	r.write("a.txt", "a\n", 0o644)
	r.write("big.bin", "pointer\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "one")
	r.write("a.txt", "changed\n", 0o644)
	p := newPlan(t, Options{Path: r.dir, GuestGit: true})
	if !p.Checkout || p.Entries != 1 {
		t.Errorf("plan of a plain repo with one change: checkout %v, %d entries; want checkout and only a.txt", p.Checkout, p.Entries)
	}
	r.write(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n", 0o644)
	r.git("add", ".gitattributes")
	p = newPlan(t, Options{Path: r.dir, GuestGit: true})
	if p.Checkout {
		t.Error("a repository with a filter attribute is checked out in the guest; its bytes would differ from the host's")
	}
}

// A tracked directory replaced by a symlink to a directory outside the
// repository: git sees the files under it as deleted (it never looks
// through a symlinked leading directory), so the copy must hold the link
// and nothing of its target.
func TestShallowSkipsSymlinkedLeadingDirectory(t *testing.T) {
	for _, guestGit := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole tree", true: "changes and checkout"}[guestGit], func(t *testing.T) {
			r := newRepo(t)
			r.write("README.md", "hello\n", 0o644)
			r.write("sub/id_rsa", "tracked placeholder\n", 0o644)
			r.write("sub/deep/notes.txt", "tracked\n", 0o644)
			r.git("add", "-A")
			r.git("commit", "-q", "-m", "first commit")
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "id_rsa"), []byte("SECRET KEY\n"), 0o600)
			os.MkdirAll(filepath.Join(outside, "deep"), 0o755)
			os.WriteFile(filepath.Join(outside, "deep", "notes.txt"), []byte("SECRET NOTES\n"), 0o600)
			os.RemoveAll(filepath.Join(r.dir, "sub"))
			r.symlink(outside, "sub")

			p := newPlan(t, Options{Path: r.dir, GuestGit: guestGit})
			staging := extract(t, p)
			target := filepath.Join(t.TempDir(), "repo")
			if out, err := finalize(t, Finalize{Staging: staging, Target: target, Links: p.Links}); err != nil {
				t.Fatalf("finalize: %v\n%s", err, out)
			}
			var leaked []string
			filepath.WalkDir(target, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if b, _ := os.ReadFile(path); strings.Contains(string(b), "SECRET") {
						leaked = append(leaked, path)
					}
				}
				return nil
			})
			if len(leaked) > 0 {
				t.Errorf("the copy holds files of the symlink's target: %v", leaked)
			}
			want := []string{"README.md", "sub@" + outside}
			if diff := cmp.Diff(want, files(t, target)); diff != "" {
				t.Errorf("guest tree (-want +got):\n%s", diff)
			}
		})
	}
}
