package daemon_test

import (
	"context"
	"errors"
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
	w := newWorld(t)
	addr := seedLeasedVM(t, w, api.VMStopped)
	rules := &fakeRules{}
	var mu sync.Mutex
	var found network.Egress
	n := vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	n.EnforceEgressWith(func() (network.Egress, error) {
		mu.Lock()
		defer mu.Unlock()
		if found == nil {
			return nil, errors.New("no egress helper answers at /run/banger/egress/1000.sock; run setup")
		}
		return found, nil
	}, nil)
	t.Cleanup(n.Close)
	w.Opts.Network = n
	w.restart()
	ctx := context.Background()
	_, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{Mode: "none"})
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "no egress helper answers") {
		t.Fatalf("err = %v; want unsupported with the reason", err)
	}
	mu.Lock()
	found = rules
	mu.Unlock()
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
