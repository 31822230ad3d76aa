package server

import (
	"context"
	"errors"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// TestStatsAndUpdateRoutes drives GET /v1/vms/{name}/stats and PATCH
// /v1/vms/{name} through the typed client over the real socket.
func TestStatsAndUpdateRoutes(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")

	st, err := cl.VMStats(ctx, "dev", -1)
	if err != nil || st.Current == nil || st.Current.MemTotal == 0 || len(st.History) != 1 || st.State != api.VMRunning {
		t.Fatalf("VMStats = %+v, %v; want one sample taken on demand", st, err)
	}
	if st, err := cl.VMStats(ctx, "dev", 0); err != nil || st.History != nil {
		t.Errorf("VMStats without history = %+v, %v", st, err)
	}
	if _, err := cl.VMStats(ctx, "nope", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stats of a missing vm: %v, want not found", err)
	}
	keep := true
	vm, err := cl.UpdateVM(ctx, "dev", api.UpdateVMRequest{KeepAlive: &keep})
	if err != nil || !vm.KeepAlive {
		t.Fatalf("UpdateVM(keep_alive) = %+v, %v", vm, err)
	}
	if st, _ := cl.VMStats(ctx, "dev", 0); !st.KeepAlive {
		t.Error("stats do not report keep-alive")
	}
	if _, err := cl.UpdateVM(ctx, "dev", api.UpdateVMRequest{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("empty update: %v, want invalid", err)
	}
}
