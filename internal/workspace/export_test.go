package workspace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/api/errdefs"
)

// guestCheckout prepares r in mode into a fresh directory, as the guest
// would get it, and returns that directory.
func guestCheckout(t *testing.T, r *repo, mode string) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "guest", "repo")
	p := newPlan(t, Options{Path: r.dir, Mode: mode, GuestGit: true})
	if out, err := finalize(t, Finalize{Staging: extract(t, p), Target: target}); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	return target
}

// exportFrom runs ExportScript on this host against dir, as the guest
// would, and returns its report, or its exit code and stderr.
func exportFrom(t *testing.T, dir string) (Snapshot, int, string) {
	t.Helper()
	argv := ExportArgv(dir, "Exporter", "export@example.com")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(gitEnv(), "HOME="+t.TempDir()) // no identity of its own
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return Snapshot{}, ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { os.RemoveAll(s.Dir) })
	return s, 0, stderr.String()
}

// state is everything export must leave alone in a checkout: status,
// HEAD, refs, stash, and every file under .git byte for byte.
func state(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(runGit(t, dir, "-c", "core.fsmonitor=false", "status", "--porcelain", "--untracked-files=all"))
	b.WriteString(runGit(t, dir, "rev-parse", "HEAD"))
	b.WriteString(runGit(t, dir, "for-each-ref"))
	b.WriteString(runGit(t, dir, "stash", "list"))
	filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		b.WriteString(p + " " + hex.EncodeToString(sum[:8]) + "\n")
		return nil
	})
	return b.String()
}

// workTreeID is the tree a checkout's work tree would commit as (tracked
// and untracked non-ignored files), made without touching its index.
func workTreeID(t *testing.T, dir string) string {
	t.Helper()
	idx := filepath.Join(t.TempDir(), "index")
	objs := t.TempDir()
	env := append(gitEnv(), "GIT_INDEX_FILE="+idx, "GIT_OBJECT_DIRECTORY="+objs, "GIT_ALTERNATE_OBJECT_DIRECTORIES="+filepath.Join(dir, ".git", "objects"))
	for _, args := range [][]string{{"add", "-A"}, {"write-tree"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		if args[0] == "write-tree" {
			return strings.TrimSpace(string(out))
		}
	}
	return ""
}

func committedRepo(t *testing.T) *repo {
	r := newRepo(t)
	r.write("a.txt", "a\n", 0o644)
	r.write("b.txt", "b\n", 0o644)
	r.write(".gitignore", "*.log\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "one")
	r.write("a.txt", "a two\n", 0o644)
	r.git("commit", "-q", "-am", "two")
	return r
}

// guestWork commits once in the guest checkout, then leaves one modified,
// one new and one ignored file.
func guestWork(t *testing.T, dir string) {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "c.txt"), []byte("from the guest\n"), 0o644)
	runGit(t, dir, "add", "c.txt")
	runGit(t, dir, "-c", "user.name=Guest", "-c", "user.email=guest@example.com", "commit", "-q", "-m", "guest commit")
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b, edited in the guest\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new in the guest\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "build.log"), []byte("ignored\n"), 0o644)
}

func TestExportBringsTheGuestWorkAsABranch(t *testing.T) {
	for _, mode := range []string{ModeShallow, ModeHistory, ModeFullCopy} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			r := committedRepo(t)
			guest := guestCheckout(t, r, mode)
			guestWork(t, guest)
			before := state(t, guest)
			hostBefore := runGit(t, r.dir, "status", "--porcelain") + runGit(t, r.dir, "symbolic-ref", "HEAD")

			snap, code, stderr := exportFrom(t, guest)
			if code != 0 {
				t.Fatalf("export exited %d: %s", code, stderr)
			}
			if got := state(t, guest); got != before {
				t.Errorf("export changed the guest checkout:\nbefore:\n%s\nafter:\n%s", before, got)
			}
			if snap.Base != strings.TrimSpace(r.git("rev-parse", "HEAD")) || snap.Commits != 1 || !snap.Uncommitted() {
				t.Errorf("snapshot = %+v; want base = host HEAD, 1 commit, uncommitted", snap)
			}
			old, err := Repo{Root: r.dir}.CheckExportBranch(ctx, "banger/dev", false)
			if err != nil || old != "" {
				t.Fatalf("CheckExportBranch = %q, %v", old, err)
			}
			if err := (Repo{Root: r.dir}).ImportBundle(ctx, snap.Bundle, snap, "banger/dev", old, "dev"); err != nil {
				t.Fatal(err)
			}
			if got, want := strings.TrimSpace(r.git("rev-parse", "banger/dev^{tree}")), workTreeID(t, guest); got != want {
				t.Errorf("branch tree %s; want the guest work tree %s\n%s", got, want, r.git("ls-tree", "-r", "banger/dev"))
			}
			if got := r.git("log", "--format=%s", "main..banger/dev"); got != "Uncommitted changes in "+guest+"\nguest commit\n" {
				t.Errorf("new commits on the branch:\n%s", got)
			}
			if got := runGit(t, r.dir, "status", "--porcelain") + runGit(t, r.dir, "symbolic-ref", "HEAD"); got != hostBefore {
				t.Errorf("host status/branch changed: %q; was %q", got, hostBefore)
			}
			if _, err := os.Stat(filepath.Join(r.dir, ".git", "FETCH_HEAD")); err == nil {
				t.Error("export wrote FETCH_HEAD in the host repository")
			}
		})
	}
}

func TestHistoryModeCarriesTheBranchHistory(t *testing.T) {
	r := committedRepo(t)
	for mode, want := range map[string]string{ModeShallow: "1", ModeHistory: "2"} {
		guest := guestCheckout(t, r, mode)
		if got := strings.TrimSpace(runGit(t, guest, "rev-list", "--count", "HEAD")); got != want {
			t.Errorf("%s: guest history has %s commits; want %s", mode, got, want)
		}
		if _, err := os.Stat(filepath.Join(guest, ".git", "shallow")); (err == nil) != (mode == ModeShallow) {
			t.Errorf("%s: .git/shallow present = %v", mode, err == nil)
		}
		if got := runGit(t, guest, "status", "--porcelain"); got != "" {
			t.Errorf("%s: guest status = %q; want clean", mode, got)
		}
	}
	r.write(".gitmodules", "", 0o644)
	if _, err := NewPlan(context.Background(), Options{Path: r.dir, Mode: ModeHistory}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("history mode with submodules: %v; want an invalid error", err)
	}
}

func TestExportAnswers(t *testing.T) {
	r := committedRepo(t)
	t.Run("nothing new", func(t *testing.T) {
		guest := guestCheckout(t, r, ModeShallow)
		if _, code, stderr := exportFrom(t, guest); code != ExportNothing || !strings.Contains(stderr, "nothing to export") {
			t.Errorf("exit %d, %s; want %d, nothing to export", code, stderr, ExportNothing)
		}
	})
	t.Run("only uncommitted", func(t *testing.T) {
		guest := guestCheckout(t, r, ModeShallow)
		os.WriteFile(filepath.Join(guest, "new.txt"), []byte("n\n"), 0o644)
		snap, code, stderr := exportFrom(t, guest)
		if code != 0 || snap.Commits != 0 || !snap.Uncommitted() {
			t.Errorf("exit %d (%s), %+v; want one uncommitted snapshot", code, stderr, snap)
		}
	})
	for _, mode := range []string{ModeShallow, ModeFullCopy} {
		t.Run("rewritten "+mode, func(t *testing.T) {
			guest := guestCheckout(t, r, mode)
			runGit(t, guest, "-c", "user.name=G", "-c", "user.email=g@example.com", "commit", "-q", "--amend", "-m", "amended")
			if _, code, stderr := exportFrom(t, guest); code != ExportRewritten || !strings.Contains(stderr, "rewritten") {
				t.Errorf("exit %d, %s; want %d, rewritten", code, stderr, ExportRewritten)
			}
		})
	}
	t.Run("not a checkout", func(t *testing.T) {
		if _, code, _ := exportFrom(t, t.TempDir()); code != ExportNoRepo {
			t.Errorf("exit %d; want %d", code, ExportNoRepo)
		}
	})
}

func TestExportNeedsGitInTheGuest(t *testing.T) {
	bin := t.TempDir()
	for _, c := range []string{"sh", "cat"} {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Skip(c + " not found")
		}
		os.Symlink(p, filepath.Join(bin, c))
	}
	argv := ExportArgv(t.TempDir(), "n", "e")
	cmd := exec.Command(filepath.Join(bin, "sh"), argv[1:]...)
	cmd.Env = []string{"PATH=" + bin}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExportNoGit || !strings.Contains(string(out), "needs git") {
		t.Errorf("without git: %v, %s; want exit %d saying export needs git", err, out, ExportNoGit)
	}
}

func TestExportBranchChecks(t *testing.T) {
	ctx := context.Background()
	r := committedRepo(t)
	repo := Repo{Root: r.dir}
	if _, err := repo.CheckExportBranch(ctx, "main", true); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "checked out") {
		t.Errorf("the checked-out branch: %v; want a conflict, even with force", err)
	}
	r.git("branch", "banger/dev")
	if _, err := repo.CheckExportBranch(ctx, "banger/dev", false); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("an existing branch: %v; want a conflict naming --force", err)
	}
	old, err := repo.CheckExportBranch(ctx, "banger/dev", true)
	if err != nil || old != strings.TrimSpace(r.git("rev-parse", "main")) {
		t.Errorf("with force: %q, %v; want the branch's commit", old, err)
	}
	if _, err := repo.CheckExportBranch(ctx, "bad..name", false); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad name: %v; want invalid", err)
	}
}

func TestParseSnapshotRefusesHostileReports(t *testing.T) {
	good := "dir /tmp/tmp.abc\nbundle /tmp/tmp.abc/bundle\nbase \nhead " + strings.Repeat("a", 40) + "\ntip " + strings.Repeat("b", 40) + "\ncommits 2\n"
	if _, err := ParseSnapshot(good); err != nil {
		t.Fatalf("good report: %v", err)
	}
	for name, out := range map[string]string{
		"missing key":   "dir /tmp/x\n",
		"bad tip":       strings.Replace(good, "tip "+strings.Repeat("b", 40), "tip $(reboot)", 1),
		"dir traversal": strings.ReplaceAll(good, "/tmp/tmp.abc", "/tmp/../etc"),
		"other bundle":  strings.Replace(good, "/tmp/tmp.abc/bundle", "/etc/shadow", 1),
		"bad count":     strings.Replace(good, "commits 2", "commits -1", 1),
	} {
		if _, err := ParseSnapshot(out); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestImportRefusesABundleThatIsNotWhatTheGuestSaid: the guest's
// bundle must hold the commit it reported.
func TestImportRefusesABundleThatIsNotWhatTheGuestSaid(t *testing.T) {
	ctx := context.Background()
	r := committedRepo(t)
	guest := guestCheckout(t, r, ModeShallow)
	guestWork(t, guest)
	snap, code, stderr := exportFrom(t, guest)
	if code != 0 {
		t.Fatalf("export exited %d: %s", code, stderr)
	}
	lying := snap
	lying.Tip = snap.Head
	err := Repo{Root: r.dir}.ImportBundle(ctx, snap.Bundle, lying, "banger/dev", "", "dev")
	if err == nil || !strings.Contains(err.Error(), "not the commit it reported") {
		t.Errorf("a bundle that is not what the guest reported: %v", err)
	}
	if out := r.git("branch", "--list", "banger/dev"); out != "" {
		t.Errorf("a refused import made a branch: %q", out)
	}
}
