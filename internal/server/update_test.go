package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestUpdateVMAppliesWholeRequestOrNothing: PATCH /v1/vms/{name} with a
// network policy and a keep_alive that is not a boolean is refused with an
// error naming keep_alive and what it takes, and changes neither; the same
// request with a valid keep_alive changes both.
func TestUpdateVMAppliesWholeRequestOrNothing(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	patch := func(body string) (int, string) { return rawPatch(t, w.Layout.SocketPath, "dev", body) }
	unchanged := func(when string) {
		t.Helper()
		vm, err := cl.VM(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if vm.KeepAlive || vm.Network == nil || vm.Network.AllowLAN {
			t.Errorf("%s: the vm changed: keep_alive %v, network %+v", when, vm.KeepAlive, vm.Network)
		}
	}

	for _, body := range []string{
		`{"network":{"mode":"full","allow_lan":true},"keep_alive":"yes"}`,
		`{"keep_alive":1,"network":{"mode":"full","allow_lan":true}}`,
	} {
		code, msg := patch(body)
		if code != http.StatusBadRequest || !strings.Contains(msg, "keep_alive") || !strings.Contains(msg, "true or false") {
			t.Errorf("PATCH %s: %d %s; want 400 naming keep_alive and what it takes", body, code, msg)
		}
		unchanged("a bad keep_alive")
	}
	code, msg := patch(`{"network":{"mode":"full","allow_lan":"yes"},"keep_alive":true}`)
	if code != http.StatusBadRequest || !strings.Contains(msg, "network.allow_lan") || !strings.Contains(msg, "bool") {
		t.Errorf("a bad allow_lan: %d %s; want 400 naming network.allow_lan and its type", code, msg)
	}
	unchanged("a bad network.allow_lan")

	if code, msg := patch(`{"network":{"mode":"full","allow_lan":true},"keep_alive":true}`); code != http.StatusOK {
		t.Fatalf("a valid update: %d %s", code, msg)
	}
	vm, err := cl.VM(ctx, "dev")
	if err != nil || !vm.KeepAlive || vm.Network == nil || !vm.Network.AllowLAN {
		t.Errorf("after a valid update: keep_alive %v, network %+v, %v; want both changed", vm.KeepAlive, vm.Network, err)
	}
}
