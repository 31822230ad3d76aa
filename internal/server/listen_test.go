package server

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"banger/api/errdefs"
	"banger/internal/paths"
)

// TestSocketCloseLeavesNoEmptyRuntimeDir: a stopped daemon takes its
// socket, pid and lock files with it, and the runtime directory (the
// /tmp/banger-UID fallback) when nothing else is left in it; a running
// VM's directory keeps it. A second daemon is refused while one runs,
// and one can start again after.
func TestSocketCloseLeavesNoEmptyRuntimeDir(t *testing.T) {
	base, err := os.MkdirTemp("", "bgsock") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	root := t.TempDir()
	layout := paths.New(filepath.Join(root, "config"), filepath.Join(root, "state"), filepath.Join(root, "cache"), filepath.Join(base, "banger-1000"))

	sock, err := Listen(layout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(layout); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Listen: %v; want a conflict", err)
	}
	// What a daemon leaves: an empty vm/ (no VM running).
	if err := os.Mkdir(filepath.Join(layout.RuntimeDir, "vm"), 0o700); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	if _, err := os.Stat(layout.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
		left, _ := os.ReadDir(layout.RuntimeDir)
		t.Errorf("runtime directory after close: %v (holds %v); want it gone", err, left)
	}

	sock, err = Listen(layout)
	if err != nil {
		t.Fatalf("Listen after a clean stop: %v", err)
	}
	vmDir := filepath.Join(layout.RuntimeDir, "vm", "0123")
	if err := os.MkdirAll(vmDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vmDir, "qmp.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	left, _ := os.ReadDir(layout.RuntimeDir)
	if len(left) != 1 || left[0].Name() != "vm" {
		t.Errorf("runtime directory with a running VM holds %v after close; want only vm/", left)
	}
	if _, err := os.Stat(filepath.Join(vmDir, "qmp.sock")); err != nil {
		t.Errorf("a running VM's file went with the daemon: %v", err)
	}
}
