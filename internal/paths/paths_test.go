package paths

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testLayout(t *testing.T) Layout {
	dir := t.TempDir()
	return New(filepath.Join(dir, "config", "banger"), filepath.Join(dir, "state", "banger"),
		filepath.Join(dir, "cache", "banger"), filepath.Join(dir, "run", "banger"))
}

// TestEnsureMakesTreesPrivate: every directory of the layout ends up 0700,
// including ones an older banger (or the user) left open to others.
func TestEnsureMakesTreesPrivate(t *testing.T) {
	l := testLayout(t)
	for _, d := range []string{l.ConfigDir, l.CacheDir, l.OCICacheDir, l.StateDir, l.KernelsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o755)
	}
	os.Chmod(l.StateDir, 0o777)
	if err := l.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(l.Private(), l.OCICacheDir, l.ImagesDir, l.KernelsDir, l.VMsDir) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", d, fi.Mode().Perm(), err)
		}
	}
}

// TestEnsureFollowsOwnLinks: a cache moved elsewhere behind a link of
// ours is fine (and made private); a file where a directory belongs is
// refused by name.
func TestEnsureFollowsOwnLinks(t *testing.T) {
	l := testLayout(t)
	elsewhere := filepath.Join(t.TempDir(), "bigdisk")
	os.Mkdir(elsewhere, 0o755)
	os.Chmod(elsewhere, 0o755)
	os.MkdirAll(filepath.Dir(l.CacheDir), 0o700)
	if err := os.Symlink(elsewhere, l.CacheDir); err != nil {
		t.Fatal(err)
	}
	if err := l.Ensure(); err != nil {
		t.Fatalf("Ensure with a linked cache: %v", err)
	}
	if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o700 {
		t.Errorf("linked cache target mode %v, want 0700", fi.Mode().Perm())
	}

	l = testLayout(t)
	os.MkdirAll(filepath.Dir(l.StateDir), 0o700)
	os.WriteFile(l.StateDir, nil, 0o600)
	if err := l.Ensure(); err == nil || !strings.Contains(err.Error(), l.StateDir) {
		t.Errorf("Ensure with a file as the state dir: %v; want an error naming it", err)
	}
}

// TestEnsureRefusesOthersDirectories: a directory (or a link) of another
// user is refused, not used. Needs root to make one.
func TestEnsureRefusesOthersDirectories(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a directory owned by another user")
	}
	l := testLayout(t)
	os.MkdirAll(l.RuntimeDir, 0o700)
	os.Chown(l.RuntimeDir, 65534, 65534)
	if err := l.Ensure(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("Ensure with another user's runtime dir: %v", err)
	}
	l = testLayout(t)
	target := t.TempDir()
	os.MkdirAll(filepath.Dir(l.CacheDir), 0o700)
	os.Symlink(target, l.CacheDir)
	os.Lchown(l.CacheDir, 65534, 65534)
	if err := l.Ensure(); err == nil || !strings.Contains(err.Error(), "not a directory") && !strings.Contains(err.Error(), "belongs to uid") {
		t.Errorf("Ensure with another user's link as the cache: %v", err)
	}
}
