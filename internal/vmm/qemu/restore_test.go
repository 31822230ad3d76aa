package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/vmm"
)

// savedState writes a state for spec as SaveState would have, with or
// without a memory file, by the fake's QEMU version.
func savedState(t *testing.T, d *Driver, spec vmm.Spec, withMemory bool) vmm.State {
	t.Helper()
	dir := t.TempDir()
	data, _ := json.Marshal(savedModel{DeviceModel: deviceModel(buildArgs(spec, "tcg", d.tscKHz, memBackend{}))})
	files := map[string]string{stateStream: "device.state", stateModel: "model.json"}
	if withMemory {
		files[stateMemory] = "memory"
	}
	for role, name := range files {
		content := []byte("x")
		if role == stateModel {
			content = data
		}
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return vmm.State{Driver: "qemu", VMMVersion: strings.TrimPrefix(fakeVersionLine, "QEMU emulator version "), Dir: dir, Files: files, CPUs: spec.CPUs, MemoryMiB: spec.MemoryMiB}
}

func TestRestoreStartsIncoming(t *testing.T) {
	for _, tt := range []struct {
		withMemory, fileMemory bool
		wantObject             string
	}{
		{false, false, "memory-backend-ram,id=ram0,size=128M"},
		{false, true, "memory-backend-file,id=ram0,size=128M,mem-path=RT/memory,share=on"},
		// A state's memory file is mapped privately, whatever the driver's
		// own choice: restores never write it.
		{true, true, "memory-backend-file,id=ram0,size=128M,mem-path=STATE/memory,share=off"},
	} {
		d, spec := fakeDriver(t, "ok")
		if tt.fileMemory {
			d.opts.MemoryDir = t.TempDir()
		}
		st := savedState(t, d, spec, tt.withMemory)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		h, err := d.Restore(ctx, spec, st)
		cancel()
		if err != nil {
			t.Fatalf("Restore: %v", err)
		}
		fakeChild(t, spec.RuntimeDir)
		data, err := os.ReadFile(filepath.Join(spec.RuntimeDir, argsFile))
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(string(data), "\x00")
		if got := values(args, "-incoming"); !slices.Equal(got, []string{"defer"}) {
			t.Errorf("-incoming = %q, want [defer]", got)
		}
		if !slices.Contains(args, "-S") {
			t.Error("a restored VM must start paused (-S): Resume runs it")
		}
		want := strings.NewReplacer("RT/memory", d.memoryPath(spec.RuntimeDir), "STATE", st.Dir).Replace(tt.wantObject)
		if got := values(args, "-object"); !slices.Contains(got, want) {
			t.Errorf("state with memory %v, FileMemory %v: -object = %q, want %q", tt.withMemory, tt.fileMemory, got, want)
		}
		if _, shared := h.Sockets["memory"]; shared != (tt.fileMemory && !tt.withMemory) {
			t.Errorf("handle's memory file = %q, want one only for a shared mapping", h.Sockets["memory"])
		}
		d.Kill(context.Background(), h)
	}
}

func TestRestoreRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *vmm.State, spec *vmm.Spec)
		want   []string
	}{
		{"other qemu version", func(st *vmm.State, _ *vmm.Spec) { st.VMMVersion = "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" },
			[]string{"QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", "QEMU 9.9.9 (fake 1)", "boot the VM cold"}},
		{"other memory size", func(_ *vmm.State, spec *vmm.Spec) { spec.MemoryMiB = 256 },
			[]string{"device model differs", `saved "-m 128"`, `restore "-m 256"`, "boot it cold"}},
		{"other driver", func(st *vmm.State, _ *vmm.Spec) { st.Driver = "firecracker" }, []string{`"firecracker" driver`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, spec := fakeDriver(t, "ok")
			st := savedState(t, d, spec, false)
			tt.change(&st, &spec)
			_, err := d.Restore(context.Background(), spec, st)
			if !errors.Is(err, ErrIncompatibleState) {
				t.Fatalf("Restore = %v, want ErrIncompatibleState", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(spec.RuntimeDir, argsFile)); err == nil {
				t.Error("qemu was started for a state it cannot load")
			}
		})
	}
}

func TestRestoreConfinesStateFiles(t *testing.T) {
	d, spec := fakeDriver(t, "ok")
	st := savedState(t, d, spec, false)
	outside := filepath.Join(t.TempDir(), "device.state")
	os.WriteFile(outside, []byte("x"), 0o600)
	for _, name := range []string{"../" + filepath.Base(filepath.Dir(outside)) + "/device.state", outside, "", ".."} {
		st.Files[stateStream] = name
		if _, err := d.Restore(context.Background(), spec, st); err == nil || !strings.Contains(err.Error(), "not a plain file name") {
			t.Errorf("stream file %q: Restore = %v, want it refused", name, err)
		}
	}
	st.Files = map[string]string{stateModel: "model.json"}
	if _, err := d.Restore(context.Background(), spec, st); err == nil || !strings.Contains(err.Error(), "has no stream file") {
		t.Errorf("state without a stream: Restore = %v", err)
	}
}

func TestReleaseRemovesRuntimeFiles(t *testing.T) {
	d, spec := fakeDriver(t, "ok")
	d.opts.MemoryDir = t.TempDir()
	h, err := d.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	fakeChild(t, spec.RuntimeDir)
	mem := filepath.Join(d.opts.MemoryDir, "banger-"+filepath.Base(spec.RuntimeDir)+".mem")
	if h.Sockets["memory"] != mem {
		t.Fatalf("handle's memory file = %q, want %s", h.Sockets["memory"], mem)
	}
	os.WriteFile(mem, []byte("guest memory"), 0o600) // what QEMU would have made
	if err := d.Release(context.Background(), h); err == nil {
		t.Error("Release of a running VM succeeded")
	}
	if _, err := os.Stat(mem); err != nil {
		t.Errorf("Release of a running VM removed its memory file: %v", err)
	}
	if err := d.Kill(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	// A daemon's other driver, without a memory dir, releases it too.
	if err := New(Options{Binary: d.opts.Binary}).Release(context.Background(), h); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for _, f := range []string{mem, filepath.Join(spec.RuntimeDir, qmpSocket), filepath.Join(spec.RuntimeDir, pidFile)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Release", f)
		}
	}
}
