package firecracker_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// TestForkBesideRunningParent is a fork as the daemon makes it: the
// parent is paused, saved and resumed, and runs on while its state is
// restored into a second Firecracker on another TAP and vsock socket.
// Both guests answer on their own sockets, the fork with the parent's
// memory (a session it held); every request satisfies the spec, and the
// fork's load carries the overrides.
func TestForkBesideRunningParent(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Record: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	parent := newSpec(t)
	ph := create(t, d, parent)
	if err := d.Start(ctx, ph); err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialAgent(ctx, ph)
	if err != nil {
		t.Fatal(err)
	}
	if err := rememberSession(ctx, conn, "before-fork"); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, ph); err != nil {
		t.Fatal(err)
	}
	st, err := d.SaveState(ctx, ph, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Resume(ctx, ph); err != nil {
		t.Fatalf("resuming the parent after its save: %v", err)
	}
	fork := forkSpec(t)
	fh, err := d.Restore(ctx, fork, st)
	if err != nil {
		t.Fatalf("Restore beside the running parent: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), fh) })
	if err := d.Resume(ctx, fh); err != nil {
		t.Fatal(err)
	}
	if fh.Sockets["vsock"] == ph.Sockets["vsock"] {
		t.Fatalf("the fork's vsock socket is its parent's: %s", fh.Sockets["vsock"])
	}
	for name, h := range map[string]*vmm.Handle{"parent": ph, "fork": fh} {
		conn, err := d.DialAgent(ctx, h)
		if err != nil {
			t.Fatalf("the %s's agent: %v", name, err)
		}
		if got, err := recallSession(ctx, conn); err != nil || got != "before-fork" {
			t.Errorf("the %s's guest remembers %q (%v); want the session made before the fork", name, got, err)
		}
	}

	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	validator := contractSpec(t)
	var loads int
	for _, req := range r.Requests {
		if req.Status/100 != 2 {
			t.Errorf("%s %s answered %d: %s", req.Method, req.Path, req.Status, req.Fault)
		}
		if _, f := validator.Validate(req.Method, req.Path, req.Body); f != nil {
			t.Errorf("%s %s %s violates the spec: %s", req.Method, req.Path, req.Body, f.Message)
		}
		if req.Path != "/snapshot/load" {
			continue
		}
		loads++
		var load firecracker.SnapshotLoadParams
		if err := json.Unmarshal(req.Body, &load); err != nil {
			t.Fatal(err)
		}
		if len(load.NetworkOverrides) != 1 || load.NetworkOverrides[0].HostDevName != fork.Net.TAP {
			t.Errorf("the fork's load moves the network to %+v; want its TAP %s", load.NetworkOverrides, fork.Net.TAP)
		}
		if load.VsockOverride == nil || load.VsockOverride.UdsPath != fh.Sockets["vsock"] {
			t.Errorf("the fork's load moves the vsock to %+v; want its socket %s", load.VsockOverride, fh.Sockets["vsock"])
		}
	}
	if loads != 1 {
		t.Errorf("%d snapshot loads recorded, want the fork's one", loads)
	}
}
