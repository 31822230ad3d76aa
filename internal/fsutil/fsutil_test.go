package fsutil

import (
	"path/filepath"
	"testing"
)

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("syncing a directory: %v", err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("syncing a missing directory succeeded")
	}
}

func TestRandomHex(t *testing.T) {
	a, b := RandomHex(), RandomHex()
	if len(a) != 8 || a == b {
		t.Errorf("RandomHex gave %q and %q", a, b)
	}
}
