package daemon_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/daemon/vms"
	"banger/internal/network"
)

// fakeRules is the host's egress table in memory: what the last sync
// asked for, and deny counts to hand out.
type fakeRules struct {
	mu     sync.Mutex
	syncs  int
	last   []network.VMEgress
	denied []network.Denial
	// failSyncs is how many of the next syncs fail.
	failSyncs int
}

func (f *fakeRules) Sync(spec network.EgressSpec, v []network.VMEgress) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSyncs > 0 {
		f.failSyncs--
		return errors.New("nftables: a sync made to fail")
	}
	f.syncs++
	f.last = slices.Clone(v)
	return nil
}

func (f *fakeRules) Learn(netip.Addr, []netip.Addr, time.Duration) error { return nil }

func (f *fakeRules) Denied() ([]network.Denial, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.denied
	f.denied = nil
	return d, nil
}

func (f *fakeRules) Remove() (bool, error) { return false, nil }

func (f *fakeRules) lastSync() []network.VMEgress {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.last)
}

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// enforcingWorld has a host network over the test's state whose egress
// rules are fakeRules, and a VM "dev" holding a lease.
func enforcingWorld(t *testing.T) (*world, *fakeRules, netip.Addr) {
	t.Helper()
	w := newWorld(t)
	addr := seedLeasedVM(t, w, api.VMStopped)
	rules := &fakeRules{}
	n := vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	n.EnforceEgress(rules, nil)
	t.Cleanup(n.Close)
	w.Opts.Network = n
	w.restart()
	return w, rules, addr
}

func TestNetworkPolicySetShownAndSynced(t *testing.T) {
	w, rules, addr := enforcingWorld(t)
	ctx := context.Background()

	// A VM from before policies has full, and reconcile applied it.
	full := []network.VMEgress{{Addr: addr, Policy: network.EgressPolicy{Mode: network.EgressFull}}}
	if diff := cmp.Diff(full, rules.lastSync(), addrCmp); diff != "" {
		t.Errorf("sync at start (-want +got):\n%s", diff)
	}
	if v, _ := w.D.VM(ctx, "dev"); v.Network == nil || v.Network.Mode != "full" {
		t.Errorf("vm show network = %+v, want full", v.Network)
	}

	v, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{Mode: "allow", Allow: []string{"Allowed.Test", "203.0.113.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &api.NetworkPolicy{Mode: "allow", Allow: []string{"203.0.113.0/24", "allowed.test"}}
	if diff := cmp.Diff(want, v.Network); diff != "" {
		t.Errorf("policy shown after set (-want +got):\n%s", diff)
	}
	allow := []network.VMEgress{{Addr: addr, Policy: network.EgressPolicy{Mode: network.EgressAllow, Allow: want.Allow}}}
	if diff := cmp.Diff(allow, rules.lastSync(), addrCmp); diff != "" {
		t.Errorf("sync after set (-want +got):\n%s", diff)
	}

	// Bad input is refused and changes nothing.
	for _, bad := range []api.NetworkPolicy{{Mode: "open"}, {Mode: "full", Allow: []string{"a.test"}}, {Mode: "allow", Allow: []string{"a b"}}} {
		if _, err := w.D.SetNetworkPolicy(ctx, "dev", bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("policy %+v: err %v, want invalid", bad, err)
		}
	}
	if v, _ := w.D.VM(ctx, "dev"); !cmp.Equal(want, v.Network) {
		t.Errorf("a refused policy changed the VM's: %+v", v.Network)
	}

	// A restarted daemon restores the same rules.
	w.restart()
	if diff := cmp.Diff(allow, rules.lastSync(), addrCmp); diff != "" {
		t.Errorf("sync after a restart (-want +got):\n%s", diff)
	}

	// Deleting the VM removes its rules and its policy.
	if err := w.D.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	if got := rules.lastSync(); len(got) != 0 {
		t.Errorf("rules after delete: %+v", got)
	}
	if _, ok, err := w.Store.VMNetwork(ctx, "dev"); ok || err != nil {
		t.Errorf("policy row after delete: %v, %v", ok, err)
	}
}

func TestNetworkDenialsBecomeEvents(t *testing.T) {
	w, rules, addr := enforcingWorld(t)
	ctx := context.Background()
	rules.mu.Lock()
	rules.denied = []network.Denial{{Addr: addr, Packets: 7}}
	rules.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := w.D.Events(ctx, "vm/dev", 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, e := range evs {
			if strings.HasPrefix(e.Message, "egress:") {
				found = append(found, e.Message)
			}
		}
		if len(found) == 1 && strings.Contains(found[0], "dropped 7 packets") {
			break
		}
		if len(found) > 1 || time.Now().After(deadline) {
			t.Fatalf("egress events = %q, want one saying 7 packets were dropped", found)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestNetworkPolicyCreateRecordsIt(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "dev", Network: &api.NetworkPolicy{Mode: "none", AllowLAN: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&api.NetworkPolicy{Mode: "none", AllowLAN: true}, v.Network); diff != "" {
		t.Errorf("created VM's policy (-want +got):\n%s", diff)
	}
	list, err := w.D.VMs(ctx)
	if err != nil || len(list) != 1 || list[0].Network == nil || list[0].Network.Mode != "none" {
		t.Errorf("vm list network = %+v, %v", list, err)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "bad", Network: &api.NetworkPolicy{Mode: "allow", Allow: []string{"*.org"}}}, nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a bad policy at create: %v, want invalid", err)
	}
	if _, err := w.D.VM(ctx, "bad"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a VM refused for its policy exists: %v", err)
	}
}

// A daemon that cannot write nftables records no policy it cannot keep.
func TestNetworkPolicyRefusedWhenNotEnforced(t *testing.T) {
	w := newWorld(t)
	seedLeasedVM(t, w, api.VMStopped) // a host network without EnforceEgress
	_, err := w.D.SetNetworkPolicy(context.Background(), "dev", api.NetworkPolicy{Mode: "none"})
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("err = %v, want unsupported naming CAP_NET_ADMIN", err)
	}
}

// --allow-lan alone keeps the VM's mode and list; a create without a
// mode takes default_network_policy.
func TestNetworkPolicyAllowLANAloneKeepsMode(t *testing.T) {
	w, _, _ := enforcingWorld(t)
	ctx := context.Background()
	if _, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{Mode: "allow", Allow: []string{"a.test"}}); err != nil {
		t.Fatal(err)
	}
	v, err := w.D.SetNetworkPolicy(ctx, "dev", api.NetworkPolicy{AllowLAN: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&api.NetworkPolicy{Mode: "allow", Allow: []string{"a.test"}, AllowLAN: true}, v.Network); diff != "" {
		t.Errorf("policy after --allow-lan alone (-want +got):\n%s", diff)
	}
}

func TestNetworkPolicyDefaultFromConfig(t *testing.T) {
	w := newWorld(t)
	w.D.Close()
	w.D = nil
	w.Opts.Config.DefaultNetworkPolicy = "none"
	w.restart()
	ctx := context.Background()
	v, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "dev", Network: &api.NetworkPolicy{AllowLAN: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Network == nil || v.Network.Mode != "none" || !v.Network.AllowLAN {
		t.Errorf("policy = %+v, want none (the config's default) with the LAN", v.Network)
	}
}
