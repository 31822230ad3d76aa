package daemon_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/store"
)

// A VM's TAP goes with its address and policy to the rules, so the
// bridge binds the TAP to the lease.
func TestEgressSyncCarriesTheVMsTap(t *testing.T) {
	w, rules, addr := enforcingWorld(t)
	ctx := context.Background()
	if err := w.Store.Tx(ctx, func(tx *store.Tx) error { return tx.AssignTap(ctx, "banger0-tap3", "dev") }); err != nil {
		t.Fatal(err)
	}
	if err := w.Opts.Network.(*vms.HostNetwork).SyncEgress(ctx); err != nil {
		t.Fatal(err)
	}
	want := []network.VMEgress{{Addr: addr, Policy: network.EgressPolicy{Mode: network.EgressFull}, Tap: "banger0-tap3"}}
	if diff := cmp.Diff(want, rules.lastSync(), addrCmp); diff != "" {
		t.Errorf("sync with a tap held (-want +got):\n%s", diff)
	}
}

// A daemon whose rules cannot be found (no CAP_NET_ADMIN, no helper)
// refuses policies with the reason, and picks the rules up when they
// appear (a helper started after the daemon), applying every policy.
func TestEgressRulesFoundLater(t *testing.T) {
	w, addr, n, appear := rulesFoundLater(t)
	rules := &fakeRules{}
	w.Opts.Network = n
	w.restart()
	ctx := context.Background()
	_, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{Mode: "none"})
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "no egress helper answers") {
		t.Fatalf("err = %v; want unsupported with the reason", err)
	}
	appear(rules)
	deadline := time.Now().Add(20 * time.Second)
	for len(rules.lastSync()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rules found later were never synced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := rules.lastSync(); got[0].Addr != addr {
		t.Errorf("synced %+v; want the VM at %s", got, addr)
	}
	if _, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{Mode: "none"}); err != nil {
		t.Errorf("a policy once the rules are found: %v", err)
	}
}

// Rules first found by a policy check (vm create or set asking whether
// policies are enforced), not by the poll, still get every recorded
// policy at the next poll.
func TestEgressRulesFoundByAPolicyCheckAreSynced(t *testing.T) {
	_, addr, n, appear := rulesFoundLater(t)
	rules := &fakeRules{}
	appear(rules)
	// find runs at most every poll interval: ask until it has run.
	deadline := time.Now().Add(20 * time.Second)
	for !n.EgressEnforced() {
		if time.Now().After(deadline) {
			t.Fatal("the policy check never found the rules")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for len(rules.lastSync()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("rules a policy check found were never synced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := rules.lastSync(); got[0].Addr != addr {
		t.Errorf("synced %+v; want the VM at %s", got, addr)
	}
}

// blockingRules holds every Sync until release is closed.
type blockingRules struct {
	fakeRules
	entered chan struct{}
	release chan struct{}
}

func (b *blockingRules) Sync(spec network.EgressSpec, v []network.VMEgress) error {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeRules.Sync(spec, v)
}

// The DNS server's policy lookups do not wait for a sync in progress (a
// round trip to the egress helper) or a search for the helper: they see
// the policies last applied.
func TestEgressLookupsDoNotWaitForASync(t *testing.T) {
	w := newWorld(t)
	addr := seedLeasedVM(t, w, api.VMStopped)
	rules := &blockingRules{entered: make(chan struct{}, 1), release: make(chan struct{})}
	findEntered, findRelease := make(chan struct{}, 1), make(chan struct{})
	n := vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	first := true
	n.EnforceEgressWith(func() (network.Egress, error) {
		if first { // the call at start: nothing yet
			first = false
			return nil, errors.New("no egress helper answers")
		}
		findEntered <- struct{}{}
		<-findRelease
		return rules, nil
	}, nil)
	t.Cleanup(n.Close)
	// A failed test does not leave the poll blocked for Close to wait on.
	release := func(c chan struct{}) func() {
		var once sync.Once
		return func() { once.Do(func() { close(c) }) }
	}
	releaseFind, releaseSync := release(findRelease), release(rules.release)
	t.Cleanup(releaseFind)
	t.Cleanup(releaseSync)

	lookup := func(what string) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.EgressDNS().PolicyOf(addr)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("a policy lookup waited for %s", what)
		}
	}

	// The poll finds the helper (an interval after the start), then
	// syncs.
	<-findEntered
	lookup("the search for the helper")
	releaseFind()
	<-rules.entered
	lookup("a sync")
	releaseSync()
}

// rulesFoundLater is a host network over a world with a leased VM whose
// rules are not found (no helper answers) until appear is called.
func rulesFoundLater(t *testing.T) (w *world, addr netip.Addr, n *vms.HostNetwork, appear func(network.Egress)) {
	t.Helper()
	w = newWorld(t)
	addr = seedLeasedVM(t, w, api.VMStopped)
	var mu sync.Mutex
	var found network.Egress
	n = vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	n.EnforceEgressWith(func() (network.Egress, error) {
		mu.Lock()
		defer mu.Unlock()
		if found == nil {
			return nil, errors.New("no egress helper answers at /run/banger/egress/1000.sock; run setup")
		}
		return found, nil
	}, nil)
	t.Cleanup(n.Close)
	return w, addr, n, func(r network.Egress) {
		mu.Lock()
		defer mu.Unlock()
		found = r
	}
}
