package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// TestSnapshotRoutes drives pause, resume, suspend (with its progress
// stream) and the cold start through the typed client over the real
// socket, on the fake VMM.
func TestSnapshotRoutes(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")

	if v, err := cl.PauseVM(ctx, "dev"); err != nil || v.State != api.VMPaused {
		t.Fatalf("PauseVM = %+v, %v", v, err)
	}
	if _, err := cl.StartVM(ctx, "dev", nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("starting a paused vm: %v, want a conflict", err)
	}
	if v, err := cl.ResumeVM(ctx, "dev"); err != nil || v.State != api.VMRunning {
		t.Fatalf("ResumeVM = %+v, %v", v, err)
	}
	var steps []string
	v, err := cl.SuspendVM(ctx, "dev", func(e api.Event) { steps = append(steps, e.Step) })
	if err != nil || v.State != api.VMSuspended || v.StateBytes <= 0 {
		t.Fatalf("SuspendVM = %+v, %v", v, err)
	}
	if !strings.Contains(strings.Join(steps, " "), "save") {
		t.Errorf("suspend progress = %v; want a save step", steps)
	}
	if _, err := cl.PauseVM(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pausing a missing vm: %v, want not found", err)
	}
	boots := w.Driver.Boots()
	if v, err := cl.StartVMCold(ctx, "dev", nil); err != nil || v.State != api.VMRunning || v.StateBytes != 0 || w.Driver.Boots() != boots+1 {
		t.Fatalf("StartVMCold = %+v, %v; want a fresh boot", v, err)
	}
}
