package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
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
