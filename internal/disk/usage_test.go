package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TreeUsage counts what the tree takes on disk: a sparse file by its
// data, a hardlinked file once, a symlink's target not at all.
func TestTreeUsage(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.WriteFile(data, bytes.Repeat([]byte("d"), 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(data)
	one := Allocated(fi)
	if one < 256<<10 {
		t.Fatalf("Allocated of 256 KiB of data = %d", one)
	}
	dir := filepath.Join(root, "dir")
	os.Mkdir(dir, 0o755)
	if err := os.Link(data, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, bytes.Repeat([]byte("o"), 1<<20), 0o644)
	os.Symlink(outside, filepath.Join(root, "symlink"))
	if err := CreateSparse(filepath.Join(root, "sparse"), 1<<30); err != nil {
		t.Fatal(err)
	}
	got := TreeUsage(root)
	// The data once, plus directories (a few blocks each), nothing for
	// the hole or the symlink's target.
	if got < one || got > one+64<<10 {
		t.Errorf("TreeUsage = %d, want about %d (the data counted once)", got, one)
	}
	if got := TreeUsage(filepath.Join(root, "missing")); got != 0 {
		t.Errorf("TreeUsage of a missing tree = %d", got)
	}
}
