package daemon_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/network"
)

// TestUpdateVMAllOrNothing: UpdateVM checks the whole request before it
// changes anything. A bad policy, a VM held by another operation or a
// missing VM changes neither the policy nor keep_alive; a valid request
// changes both and syncs the rules.
func TestUpdateVMAllOrNothing(t *testing.T) {
	w, rules, addr := enforcingWorld(t)
	ctx := context.Background()
	keep := true
	full := &api.NetworkPolicy{Mode: "full"}
	unchanged := func(when string) {
		t.Helper()
		vm, err := w.D.VM(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if vm.KeepAlive || !cmp.Equal(vm.Network, full) {
			t.Errorf("%s: keep_alive %v, network %+v; want neither changed", when, vm.KeepAlive, vm.Network)
		}
	}

	_, err := w.D.UpdateVM(ctx, "dev", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "allow", Allow: []string{"*.org"}}})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a bad policy with keep_alive: %v, want invalid", err)
	}
	unchanged("a bad policy")

	release, err := w.D.Hold("dev", "workspace")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.D.UpdateVM(ctx, "dev", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "none"}})
	release()
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("an update of a vm held by another operation: %v, want conflict", err)
	}
	unchanged("a held vm")

	_, err = w.D.UpdateVM(ctx, "nope", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "none"}})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "banger vm list") {
		t.Errorf("an update of a missing vm: %v, want not found naming 'banger vm list'", err)
	}
	_, err = w.D.UpdateVM(ctx, "dev", api.UpdateVMRequest{})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "keep_alive") || !strings.Contains(err.Error(), "network") {
		t.Errorf("an empty update: %v, want invalid naming keep_alive and network", err)
	}

	vm, err := w.D.UpdateVM(ctx, "dev", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if !vm.KeepAlive || !cmp.Equal(vm.Network, &api.NetworkPolicy{Mode: "none"}) {
		t.Errorf("after a valid update: keep_alive %v, network %+v; want both changed", vm.KeepAlive, vm.Network)
	}
	if got := rules.lastSync(); len(got) != 1 || got[0].Addr != addr || got[0].Policy.Mode != network.EgressNone {
		t.Errorf("rules synced %+v; want the VM at %s with policy none", got, addr)
	}
}

// A daemon that cannot enforce a policy refuses it before keep_alive
// changes.
func TestUpdateVMUnenforceablePolicyChangesNothing(t *testing.T) {
	w := newWorld(t)
	seedLeasedVM(t, w, api.VMStopped) // a host network without EnforceEgress
	keep := true
	_, err := w.D.UpdateVM(context.Background(), "dev", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "none"}})
	if !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("err = %v, want unsupported", err)
	}
	if vm, err := w.D.VM(context.Background(), "dev"); err != nil || vm.KeepAlive {
		t.Errorf("keep_alive changed with a refused policy: %+v, %v", vm, err)
	}
}

// An update whose rules sync fails is recorded whole: the error says so,
// both events are there (the policy's as a warning), and the egress poll
// applies the policy once the rules take it.
func TestUpdateVMSyncFailureIsRecordedAndRetried(t *testing.T) {
	w, rules, addr := enforcingWorld(t)
	ctx := context.Background()
	rules.mu.Lock()
	rules.failSyncs = 1
	rules.mu.Unlock()
	keep := true
	_, err := w.D.UpdateVM(ctx, "dev", api.UpdateVMRequest{KeepAlive: &keep, Network: &api.NetworkPolicy{Mode: "none"}})
	if err == nil || !strings.Contains(err.Error(), "recorded") || !strings.Contains(err.Error(), "made to fail") {
		t.Fatalf("update with a failing sync = %v; want an error saying the change is recorded, with the cause", err)
	}
	vm, err := w.D.VM(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if !vm.KeepAlive || vm.Network == nil || vm.Network.Mode != "none" {
		t.Errorf("keep_alive %v, network %+v; want both recorded", vm.KeepAlive, vm.Network)
	}
	evs, err := w.D.Events(ctx, "vm/dev", 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var warned, kept bool
	for _, e := range evs {
		warned = warned || e.Level == "warn" && strings.Contains(e.Message, "recorded as none")
		kept = kept || strings.Contains(e.Message, "is kept alive")
	}
	if !warned || !kept {
		t.Errorf("events %+v; want a warning that the policy is recorded but not applied, and the keep-alive event", evs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := rules.lastSync()
		if len(got) == 1 && got[0].Addr == addr && got[0].Policy.Mode == network.EgressNone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules = %+v; want the none policy applied by the poll after the failed sync", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
