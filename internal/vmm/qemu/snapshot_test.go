package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

// SaveState against the fake: the files, their names and the recorded
// device model and version, and a Restore of the result onto a spec
// with other paths.
func TestSaveStateWithFake(t *testing.T) {
	for _, fileMemory := range []bool{false, true} {
		d, spec := fakeDriver(t, "ok")
		if fileMemory {
			d.opts.MemoryDir = t.TempDir()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h, err := d.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		fakeChild(t, spec.RuntimeDir)
		if fileMemory { // what QEMU would have made
			os.WriteFile(h.Sockets["memory"], []byte("guest memory"), 0o600)
		}
		dir := t.TempDir()
		st, err := d.SaveState(ctx, h, dir)
		if err != nil {
			t.Fatalf("SaveState: %v", err)
		}
		want := vmm.State{Driver: "qemu", VMMVersion: "9.9.9 (fake 1)", Dir: dir, CPUs: 1, MemoryMiB: 128,
			Files: map[string]string{"stream": "device.state", "model": "model.json"}}
		if fileMemory {
			want.Files["memory"] = "memory"
		}
		if diff := cmp.Diff(want, st, cmpIgnoreBytes); diff != "" {
			t.Errorf("file memory %v: state (-want +got):\n%s", fileMemory, diff)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != len(want.Files) {
			t.Errorf("state dir has %d entries, want %d (no temporary files)", len(ents), len(want.Files))
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "device.state")); string(got) != "fake migration stream" {
			t.Errorf("stream = %q", got)
		}
		if fileMemory {
			if got, _ := os.ReadFile(filepath.Join(dir, "memory")); string(got) != "guest memory" {
				t.Errorf("memory = %q, want a copy of the VM's memory file", got)
			}
		}
		d.Kill(ctx, h)

		// A fork: another runtime dir, console and disk path.
		_, fork := fakeDriver(t, "ok")
		h2, err := d.Restore(ctx, fork, st)
		if err != nil {
			t.Fatalf("Restore of a saved state onto other paths: %v", err)
		}
		fakeChild(t, fork.RuntimeDir)
		d.Kill(ctx, h2)

		fork.MemoryMiB = 256
		if _, err := d.Restore(ctx, fork, st); !errors.Is(err, ErrIncompatibleState) || !strings.Contains(err.Error(), `saved "-m 128"`) {
			t.Errorf("Restore with more memory = %v, want the model difference", err)
		}
	}
}

var cmpIgnoreBytes = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Bytes" }, cmp.Ignore())
