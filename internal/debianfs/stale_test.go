package debianfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Work directories of killed Builds go; one a Build holds, one just made
// and anything else next to them stay.
func TestRemoveStale(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "default-rootfs")
	mk := func(name string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(cache, name)
		if err := os.MkdirAll(filepath.Join(p, "tree", "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "tree", "etc", "big"), []byte(strings.Repeat("x", 32<<10)), 0o644)
		then := time.Now().Add(-age)
		os.Chtimes(p, then, then)
		return p
	}
	killed := mk(".default-rootfs.tmp-111", time.Hour)
	running := mk(".default-rootfs.tmp-222", time.Hour)
	fresh := mk(".default-rootfs.tmp-333", 0)
	other := mk(".other.tmp-444", time.Hour)
	lock, err := lockDir(running)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	n, bytes, err := RemoveStale(dir)
	if err != nil || n != 1 || bytes < 32<<10 {
		t.Errorf("RemoveStale = %d, %d, %v; want the one killed build's directory (over 32 KiB)", n, bytes, err)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("killed build's directory: %v", err)
	}
	for _, p := range []string{running, fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; want it kept", filepath.Base(p), err)
		}
	}
	if n, _, err := RemoveStale(filepath.Join(t.TempDir(), "missing", "default-rootfs")); n != 0 || err != nil {
		t.Errorf("RemoveStale in a missing cache = %d, %v", n, err)
	}
}
