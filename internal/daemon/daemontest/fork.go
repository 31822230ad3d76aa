package daemontest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"banger/internal/agentproto"
	"banger/internal/daemon"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/testutil/hostileguest"
	"banger/internal/vmm/vmmfake"
)

// NewForkable is New with what a fork needs beyond the fake driver: a
// network that leases addresses (LeaseNet) and guests that answer reseed
// and reidentify (IdentityGuest).
func NewForkable(t testing.TB, mut func(*daemon.Options)) (*World, *LeaseNet, *IdentityGuest) {
	t.Helper()
	nw := NewLeaseNet()
	w := New(t, func(o *daemon.Options) {
		o.Network = nw
		if mut != nil {
			mut(o)
		}
	})
	return w, nw, NewIdentityGuest(w.Driver)
}

// LeaseNet is a vms.Network that leases a distinct address to each VM and
// records its TAPs, so a test sees what a VM takes and gives back. It
// touches no host network.
type LeaseNet struct {
	mu     sync.Mutex
	leases map[string]netip.Addr
	taps   map[string]string
	next   int
}

var _ vms.Network = (*LeaseNet)(nil)

// NewLeaseNet returns a LeaseNet leasing from 172.16.0.2 up.
func NewLeaseNet() *LeaseNet {
	return &LeaseNet{leases: map[string]netip.Addr{}, taps: map[string]string{}, next: 2}
}

func (n *LeaseNet) Allocate(ctx context.Context, vm string) (netip.Addr, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.leases[vm]
	if !ok {
		a = netip.AddrFrom4([4]byte{172, 16, 0, byte(n.next)})
		n.next++
		n.leases[vm] = a
	}
	return a, network.MAC(a).String(), nil
}

func (n *LeaseNet) ReleaseLease(ctx context.Context, vm string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.leases, vm)
	return nil
}

func (n *LeaseNet) AcquireTAP(ctx context.Context, vm string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.taps[vm]; ok {
		return "", fmt.Errorf("vm %s holds %s already", vm, t)
	}
	n.taps[vm] = "tap-" + vm
	return n.taps[vm], nil
}

func (n *LeaseNet) ReleaseTAP(ctx context.Context, vm string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.taps, vm)
	return nil
}

func (n *LeaseNet) KernelArgs(addr netip.Addr) []string {
	return []string{network.ArgIP + "=" + netip.PrefixFrom(addr, 24).String(), network.ArgGW + "=172.16.0.1", network.ArgDNS + "=1.1.1.1"}
}

func (n *LeaseNet) Addr(ctx context.Context, vm string) (netip.Addr, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.leases[vm]
	return a, ok
}

func (n *LeaseNet) Addrs(ctx context.Context) (map[string]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]netip.Addr{}
	for k, v := range n.leases {
		out[k] = v
	}
	return out, nil
}

func (n *LeaseNet) CheckConfig(ctx context.Context, running func(string) bool) error { return nil }

// Holds reports whether vm has a lease and a TAP.
func (n *LeaseNet) Holds(vm string) (lease, tap bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, lease = n.leases[vm]
	_, tap = n.taps[vm]
	return lease, tap
}

// IdentityGuest answers reseed and reidentify for the fake's guests (whose
// real agent must not touch the host's random pool or network) and
// records what it was asked, with the state of the links at the time.
// Every other call goes to the real in-process agent.
type IdentityGuest struct {
	*hostileguest.Guest
	drv *vmmfake.Driver

	mu       sync.Mutex
	calls    []string
	ids      []agentproto.ReidentifyRequest
	linkDown []int
}

// NewIdentityGuest makes g answer drv's agent connections from now on.
func NewIdentityGuest(drv *vmmfake.Driver) *IdentityGuest {
	g := &IdentityGuest{Guest: hostileguest.New(), drv: drv}
	g.Handle(agentproto.CallReseed, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		g.record(agentproto.CallReseed)
		return hostileguest.Reply(agentproto.ReseedResult{Bytes: agentproto.ReseedBytes, CreditedBits: 8 * agentproto.ReseedBytes, Reseeded: true})(ctx, h, st)
	})
	g.Handle(agentproto.CallReidentify, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		var req agentproto.ReidentifyRequest
		if err := json.Unmarshal(h.Args, &req); err != nil {
			return err
		}
		down := 0
		for _, vh := range g.drv.Live() {
			if !g.drv.LinkUp(vh.PID) {
				down++
			}
		}
		g.mu.Lock()
		g.ids, g.linkDown = append(g.ids, req), append(g.linkDown, down)
		g.mu.Unlock()
		g.record(agentproto.CallReidentify)
		return hostileguest.Reply(agentproto.Reidentified{Hostname: req.Hostname, MAC: req.MAC, Addr: req.Addr, MachineID: strings.Repeat("ab", 16)})(ctx, h, st)
	})
	drv.ServeAgent(g.Serve)
	return g
}

func (g *IdentityGuest) record(call string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call)
}

// Record is what the guests were asked so far: the identity calls in
// order, each reidentify request, and how many live VMMs had their link
// down at each reidentify.
func (g *IdentityGuest) Record() (calls []string, ids []agentproto.ReidentifyRequest, linkDown []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...), append([]agentproto.ReidentifyRequest(nil), g.ids...), append([]int(nil), g.linkDown...)
}
