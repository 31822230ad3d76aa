package firecracker_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// savedVM boots a VM, pauses it, saves its state into a new dir and
// kills it; it returns the spec it ran with and the state.
func savedVM(t *testing.T, d *firecracker.Driver) (vmm.Spec, vmm.State) {
	t.Helper()
	ctx := context.Background()
	spec := newSpec(t)
	h := create(t, d, spec)
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, h); err != nil {
		t.Fatal(err)
	}
	st, err := d.SaveState(ctx, h, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	return spec, st
}

// forkSpec is a spec for a fork of a VM made by newSpec: its own runtime
// dir, disks and TAP.
func forkSpec(t *testing.T) vmm.Spec {
	t.Helper()
	s := newSpec(t)
	s.Name, s.Net.TAP, s.Net.MAC = "fc-fork", "bgtap1", "06:00:ac:10:00:03"
	return s
}

// TestSnapshotContract saves a VM and restores it as a fork after its
// disks are gone: every request must satisfy the spec, the load must move
// the network interface and the vsock device to the fork's, and the
// fork's Firecracker must open the fork's disks (the saved drive paths
// are relative to each VM's runtime dir).
func TestSnapshotContract(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Record: rec})
	parent, st := savedVM(t, d)
	for _, disk := range parent.Disks {
		if err := os.Remove(disk.Path); err != nil {
			t.Fatal(err)
		}
	}
	fork := forkSpec(t)
	ctx := context.Background()
	h, err := d.Restore(ctx, fork, st)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	if err := d.Adopt(ctx, h); err != nil {
		t.Errorf("Adopt of a restored, paused VM: %v", err)
	}
	if err := d.Resume(ctx, h); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := d.DialAgent(dctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(dctx, conn); err != nil {
		t.Fatalf("the fork's agent: %v", err)
	}
	for _, disk := range fork.Disks {
		if got, _ := os.Readlink(filepath.Join(fork.RuntimeDir, "drives", disk.ID)); got != disk.Path {
			t.Errorf("the fork's drive %s links to %q, want its own disk %s", disk.ID, got, disk.Path)
		}
	}

	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	validator := contractSpec(t)
	var create, load []byte
	seen := map[string]bool{}
	for _, req := range r.Requests {
		if req.Status/100 != 2 {
			t.Errorf("%s %s answered %d: %s", req.Method, req.Path, req.Status, req.Fault)
		}
		got, f := validator.Validate(req.Method, req.Path, req.Body)
		if f != nil {
			t.Errorf("%s %s %s violates the spec: %s", req.Method, req.Path, req.Body, f.Message)
			continue
		}
		key := got.Op.Method + " " + got.Op.Path
		switch got.Op.Path {
		case "/vm":
			key += " " + got.Body.String("state")
		case "/snapshot/create":
			create = req.Body
		case "/snapshot/load":
			load = req.Body
		case "/drives/{drive_id}":
			if p := got.Body.String("path_on_host"); p != "drives/"+got.Params["drive_id"] {
				t.Errorf("drive %s is configured as %q, want a path relative to the runtime dir", got.Params["drive_id"], p)
			}
		}
		seen[key] = true
	}
	for _, want := range []string{"PATCH /vm Paused", "PATCH /vm Resumed", "PUT /snapshot/create", "PUT /snapshot/load"} {
		if !seen[want] {
			t.Errorf("the driver never sent %s", want)
		}
	}
	wantCreate := map[string]any{
		"snapshot_path": filepath.Join(st.Dir, ".vmstate.partial"),
		"mem_file_path": filepath.Join(st.Dir, ".memory.partial"),
		"snapshot_type": "Full",
	}
	wantLoad := map[string]any{
		"snapshot_path":     filepath.Join(st.Dir, "vmstate"),
		"mem_backend":       map[string]any{"backend_type": "File", "backend_path": filepath.Join(st.Dir, "memory")},
		"network_overrides": []any{map[string]any{"iface_id": "eth0", "host_dev_name": "bgtap1"}},
		"vsock_override":    map[string]any{"uds_path": filepath.Join(fork.RuntimeDir, "vsock.sock")},
	}
	for name, c := range map[string]struct {
		got  []byte
		want map[string]any
	}{"create": {create, wantCreate}, "load": {load, wantLoad}} {
		var got map[string]any
		json.Unmarshal(c.got, &got)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("snapshot %s body (-want +got):\n%s", name, diff)
		}
	}
}

// TestSaveStateFiles: the state is the two files by role, nothing else.
func TestSaveStateFiles(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	spec, st := savedVM(t, d)
	want := vmm.State{
		Driver: "firecracker", VMMVersion: fcstandin.DefaultVersion, Dir: st.Dir,
		Files: map[string]string{"memory": "memory", "device": "vmstate"},
		CPUs:  spec.CPUs, MemoryMiB: spec.MemoryMiB, Bytes: st.Bytes,
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("SaveState (-want +got):\n%s", diff)
	}
	if left := runtimeLeftovers(t, st.Dir); !cmp.Equal(left, []string{"memory", "vmstate"}) {
		t.Errorf("the state dir holds %v, want memory and vmstate", left)
	}
	if st.Bytes <= 0 || st.Bytes > int64(spec.MemoryMiB)<<20 {
		t.Errorf("Bytes = %d: the stand-in's memory file is sparse, its data far below %d MiB", st.Bytes, spec.MemoryMiB)
	}
}

// TestSnapshotRefusals: Firecracker's refusals reach the caller in its
// words, and a refused or failed restore leaves nothing behind.
func TestSnapshotRefusals(t *testing.T) {
	ctx := context.Background()
	faultOf := func(err error) string {
		var apiErr *firecracker.APIError
		if errors.As(err, &apiErr) {
			return apiErr.FaultMessage
		}
		return ""
	}

	t.Run("pause before boot", func(t *testing.T) {
		d := standIn(t, fcstandin.Options{})
		h := create(t, d, newSpec(t))
		err := d.Pause(ctx, h)
		if got, want := faultOf(err), "The requested operation is not supported before starting the microVM."; got != want {
			t.Errorf("Pause before Start = %v, want Firecracker's %q", err, want)
		}
	})
	t.Run("save while running", func(t *testing.T) {
		d := standIn(t, fcstandin.Options{})
		h := create(t, d, newSpec(t))
		if err := d.Start(ctx, h); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		_, err := d.SaveState(ctx, h, dir)
		if got, want := faultOf(err), "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running"; got != want {
			t.Errorf("SaveState of a running VM = %v, want Firecracker's %q", err, want)
		}
	})

	d := standIn(t, fcstandin.Options{})
	_, st := savedVM(t, d)
	for _, tc := range []struct {
		name  string
		d     func(t *testing.T) *firecracker.Driver
		state func(t *testing.T) vmm.State
		want  string
		fault bool // want is the start of Firecracker's fault message
	}{
		{"missing memory file", nil, func(t *testing.T) vmm.State {
			s := copyState(t, st)
			os.Remove(filepath.Join(s.Dir, "memory"))
			return s
		}, "checking the saved memory: lstat ", false},
		{"other memory size", nil, func(t *testing.T) vmm.State {
			s := st
			s.MemoryMiB *= 2
			return s
		}, "restore it with the saved sizes", false},
		{"another firecracker release", func(t *testing.T) *firecracker.Driver {
			return standIn(t, fcstandin.Options{Version: "1.15.2"})
		}, nil, "the state was saved by firecracker 1.16.1 and this is 1.15.2, which cannot load it", false},
		{"corrupt state file (firecracker exits)", nil, func(t *testing.T) vmm.State {
			s := copyState(t, st)
			os.Remove(filepath.Join(s.Dir, "vmstate")) // a link: the saved one stays
			os.WriteFile(filepath.Join(s.Dir, "vmstate"), []byte("not a snapshot"), 0o600)
			return s
		}, "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to load snapshot state from file: ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "record.jsonl")
			drv := standIn(t, fcstandin.Options{Record: rec})
			if tc.d != nil {
				drv = tc.d(t)
			}
			s := st
			if tc.state != nil {
				s = tc.state(t)
			}
			fork := forkSpec(t)
			h, err := drv.Restore(ctx, fork, s)
			if err == nil {
				drv.Kill(ctx, h)
				t.Fatal("Restore succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore = %v, want %q", err, tc.want)
			}
			if tc.fault && !strings.HasPrefix(faultOf(err), tc.want) {
				t.Errorf("Restore = %v, want Firecracker's answer %q", err, tc.want)
			}
			if _, statErr := os.Stat(rec); statErr == nil {
				assertNothingLeft(t, rec, fork)
			} else if left := runtimeLeftovers(t, fork.RuntimeDir); len(left) > 0 {
				t.Errorf("runtime dir holds %v", left)
			}
		})
	}
}

// copyState links a saved state's files into a new dir.
func copyState(t *testing.T, st vmm.State) vmm.State {
	t.Helper()
	dir := t.TempDir()
	for _, name := range st.Files {
		if err := os.Link(filepath.Join(st.Dir, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	st.Dir = dir
	return st
}

// TestSaveRestoredVM: a restored VM can be saved again before it ever
// ran (a fork of a fork), and that state restores and runs.
func TestSaveRestoredVM(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	_, st := savedVM(t, d)
	ctx := context.Background()
	h, err := d.Restore(ctx, forkSpec(t), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	st2, err := d.SaveState(ctx, h, t.TempDir())
	if err != nil {
		t.Fatalf("SaveState of a restored, paused VM: %v", err)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	h2, err := d.Restore(ctx, forkSpec(t), st2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h2) })
	if err := d.Resume(ctx, h2); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := d.DialAgent(dctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(dctx, conn); err != nil {
		t.Fatalf("the second fork's agent: %v", err)
	}
}
