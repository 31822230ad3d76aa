package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/api/errdefs"
)

func TestPrepareTwiceReplaces(t *testing.T) {
	r := newRepo(t)
	r.write("keep.txt", "1\n", 0o644)
	r.write("old.txt", "old\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "one")
	target := filepath.Join(t.TempDir(), "ws", "repo")
	prepare := func() {
		p := newPlan(t, Options{Path: r.dir})
		if out, err := finalize(t, Finalize{Staging: extract(t, p), Target: target}); err != nil {
			t.Fatalf("finalize: %v\n%s", err, out)
		}
	}
	prepare()
	os.WriteFile(filepath.Join(target, "guest-only.txt"), []byte("made in the guest\n"), 0o644)
	os.Remove(filepath.Join(r.dir, "old.txt"))
	prepare()
	if _, err := os.Stat(filepath.Join(target, "guest-only.txt")); !os.IsNotExist(err) {
		t.Error("a second prepare kept a file of the first tree; it should replace the tree")
	}
	if _, err := os.Stat(filepath.Join(target, "old.txt")); !os.IsNotExist(err) {
		t.Error("old.txt, deleted on the host, survived the second prepare")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".repo.banger-*"))
	if len(leftovers) != 0 {
		t.Errorf("staging or old trees left behind: %v", leftovers)
	}
}

func TestReadOnlyStopsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: immutable files")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	r := newRepo(t)
	r.write("a.txt", "a\n", 0o644)
	r.symlink("a.txt", "link")
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "one")
	target := filepath.Join(t.TempDir(), "repo")
	t.Cleanup(func() { exec.Command("chattr", "-R", "-f", "-i", target).Run() })
	p := newPlan(t, Options{Path: r.dir})
	out, err := finalize(t, Finalize{Staging: extract(t, p), Target: target, ReadOnly: true})
	if err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	if !strings.Contains(out, "readonly: immutable") {
		t.Skipf("this filesystem has no immutable attribute (%s)", strings.TrimSpace(out))
	}
	if err := os.WriteFile(filepath.Join(target, "a.txt"), []byte("x"), 0o644); err == nil {
		t.Error("root could write a.txt in a read-only workspace")
	}
	if err := os.WriteFile(filepath.Join(target, "new.txt"), []byte("x"), 0o644); err == nil {
		t.Error("root could create a file in a read-only workspace")
	}
	// A later prepare lifts the protection and replaces the tree.
	p2 := newPlan(t, Options{Path: r.dir})
	if out, err := finalize(t, Finalize{Staging: extract(t, p2), Target: target}); err != nil {
		t.Fatalf("second finalize over a read-only tree: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(target, "a.txt"), []byte("x"), 0o644); err != nil {
		t.Errorf("after a writable prepare, writing fails: %v", err)
	}
}

func TestCheckGuestPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/root/repo", true},
		{"/workspace", true},
		{"/srv/app/src", true},
		{"relative", false},
		{"/root/../etc", false},
		{"/root/repo/", false},
		{"/", false},
		{"/root", false},
		{"/etc", false},
	} {
		err := CheckGuestPath(tc.path)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalid)) {
			t.Errorf("CheckGuestPath(%q) = %v; want ok=%v", tc.path, err, tc.ok)
		}
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		want         bool
	}{
		{"a", "b", false},
		{"d/a", "../b", false},
		{"d/a", "../../b", true},
		{"a", "..", true},
		{"a", "/etc/passwd", true},
		{"d/e/a", "../../x/y", false},
	} {
		if got := escapes(tc.name, tc.target); got != tc.want {
			t.Errorf("escapes(%q, %q) = %v; want %v", tc.name, tc.target, got, tc.want)
		}
	}
}

func TestStagingPathIsASibling(t *testing.T) {
	s := StagingPath("/root/repo")
	if filepath.Dir(s) != "/root" || !strings.HasPrefix(filepath.Base(s), ".repo.banger-new.") {
		t.Errorf("StagingPath = %s", s)
	}
	if StagingPath("/root/repo") == s {
		t.Error("two staging paths are equal")
	}
}

// TestReadOnlyBindMountIsLiftedWithoutMountpoint runs prepare twice on a
// guest like the busybox image: no chattr, lsattr or mountpoint. The
// first falls back to a read-only bind mount, which the second must
// find (in /proc/self/mountinfo) and lift. The path has a space, which
// mountinfo escapes.
func TestReadOnlyBindMountIsLiftedWithoutMountpoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bind mounts in a private mount namespace")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not installed")
	}
	// A PATH with busybox's tools but not chattr, lsattr or mountpoint.
	bin := t.TempDir()
	for _, c := range []string{"sh", "mv", "rm", "mkdir", "dirname", "basename", "find", "mount", "umount", "sed", "cut", "grep", "ln", "cat", "touch"} {
		if err := os.Symlink(bb, filepath.Join(bin, c)); err != nil {
			t.Fatal(err)
		}
	}
	r := newRepo(t)
	r.write("a.txt", "a\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "one")
	target := filepath.Join(t.TempDir(), "ws dir", "repo")
	one, two := extract(t, newPlan(t, Options{Path: r.dir})), extract(t, newPlan(t, Options{Path: r.dir}))
	script := filepath.Join(t.TempDir(), "finalize.sh")
	os.WriteFile(script, []byte(FinalizeScript), 0o644)
	// Both prepares and the checks run in one private mount namespace,
	// where the bind mount lives and dies.
	cmd := exec.Command(unshare, "-m", "--propagation", "private", filepath.Join(bin, "sh"), "-c", `set -e
sh "$1" "$2" "$4" 1 "" ""
if touch "$4/x" 2>/dev/null; then echo "first prepare left the tree writable"; exit 1; fi
sh "$1" "$3" "$4" 0 "" ""
touch "$4/x"
echo ok`, "test", script, one, two, target)
	cmd.Env = []string{"PATH=" + bin}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "readonly: bind mount") || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("prepare --readonly, then prepare: %v\n%s", err, out)
	}
}
