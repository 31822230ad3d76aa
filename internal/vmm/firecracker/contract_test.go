package firecracker_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/vmm/firecracker/fcstandin"
)

// TestContract replays every request the driver makes in a VM's whole
// life through the spec validator, so a field the real Firecracker would
// reject fails here. The spec is the shared one when it is checked out,
// else the in-repo copy.
func TestContract(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Record: rec})
	spec := newSpec(t)
	spec.Initrd = spec.Kernel // exercise initrd_path too
	ctx := context.Background()
	h := create(t, d, spec)
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Adopt(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Metrics(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, h); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := d.Wait(wctx, h); err != nil {
		t.Fatal(err)
	}

	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	validator := contractSpec(t)
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
		if got.Op.Path == "/actions" {
			key += " " + got.Body.String("action_type")
		}
		seen[key] = true
	}
	for _, want := range []string{
		"GET /", "GET /version", "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source",
		"PUT /drives/{drive_id}", "PUT /network-interfaces/{iface_id}", "PUT /vsock",
		"PUT /actions InstanceStart", "PUT /actions FlushMetrics", "PUT /actions SendCtrlAltDel",
	} {
		if !seen[want] {
			t.Errorf("the driver never sent %s (sent %v)", want, seen)
		}
	}
}

func contractSpec(t *testing.T) *fcstandin.Spec {
	t.Helper()
	path, err := sharedSpecPath()
	if err != nil {
		path = repoSpec
	}
	s, err := fcstandin.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSpecCopyIsCurrent keeps testdata/firecracker-api.yaml identical to
// the shared spec, the source of truth, when that is checked out.
func TestSpecCopyIsCurrent(t *testing.T) {
	shared := sharedSpec(t)
	want, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(repoSpec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s; copy the shared spec into testdata and fix what the driver sends", repoSpec, shared)
	}
}
