package vms

import (
	"context"
	"errors"
	"net/netip"

	"banger/internal/config"
	"banger/internal/network"
	"banger/internal/store"
)

// Network is what VMs need from the host network: an address for the
// VM's life, a TAP while it runs, and the kernel arguments that tell the
// guest its address. The real one sits on internal/network; tests may
// run VMs without a network (nil).
type Network interface {
	// Allocate returns vm's address and MAC, leasing one if it has none.
	Allocate(ctx context.Context, vm string) (addr netip.Addr, mac string, err error)
	ReleaseLease(ctx context.Context, vm string) error
	// AcquireTAP hands vm a TAP; where the network enforces egress it
	// also puts vm's rules in place (its policy, its lease bound to the
	// TAP) before returning, so the lease is allocated first.
	AcquireTAP(ctx context.Context, vm string) (string, error)
	ReleaseTAP(ctx context.Context, vm string) error
	KernelArgs(addr netip.Addr) []string
	// Addr returns vm's leased address, if any.
	Addr(ctx context.Context, vm string) (netip.Addr, bool)
	// Addrs returns every leased address by VM, without writing.
	Addrs(ctx context.Context) (map[string]netip.Addr, error)
	// CheckConfig refuses network settings that changed under running VMs.
	CheckConfig(ctx context.Context, running func(vm string) bool) error
}

// HostNetwork is the Network on banger's bridge and TAP pool.
type HostNetwork struct {
	cfg  config.Config
	st   *store.Store
	db   network.Store
	ipam *network.IPAM
	pool *network.Pool
	// egress keeps VMs' egress policies on the host (egress.go).
	egress *egressCtl
}

// NewHostNetwork builds the network over the state database.
func NewHostNetwork(cfg config.Config, st *store.Store, uid int) *HostNetwork {
	db := network.FromStore(st)
	return &HostNetwork{
		cfg:    cfg,
		st:     st,
		db:     db,
		ipam:   network.NewIPAM(db, cfg),
		pool:   network.NewPool(network.PoolOptions{Config: cfg, Store: db, UID: uid}),
		egress: newEgressCtl(cfg, st),
	}
}

// IPAM exposes the allocator (the DNS server resolves from it).
func (n *HostNetwork) IPAM() *network.IPAM { return n.ipam }

func (n *HostNetwork) Allocate(ctx context.Context, vm string) (netip.Addr, string, error) {
	l, err := n.ipam.Allocate(ctx, vm)
	return l.Addr, l.MAC, err
}

func (n *HostNetwork) ReleaseLease(ctx context.Context, vm string) error {
	return n.ipam.Release(ctx, vm)
}

// AcquireTAP hands vm a TAP and binds the VM's address to it in the
// egress tables before the VMM opens it: until then nothing from that
// TAP passes the bridge.
func (n *HostNetwork) AcquireTAP(ctx context.Context, vm string) (string, error) {
	tap, err := n.pool.Acquire(ctx, vm)
	if err != nil {
		return "", err
	}
	if err := n.SyncEgress(ctx); err != nil {
		return "", errors.Join(err, n.pool.Release(context.WithoutCancel(ctx), vm))
	}
	return tap, nil
}

// ReleaseTAP frees vm's TAP and unbinds its address from it.
func (n *HostNetwork) ReleaseTAP(ctx context.Context, vm string) error {
	if err := n.pool.Release(ctx, vm); err != nil {
		return err
	}
	return n.SyncEgress(ctx)
}

func (n *HostNetwork) KernelArgs(addr netip.Addr) []string { return network.KernelArgs(addr, n.cfg) }

func (n *HostNetwork) Addr(ctx context.Context, vm string) (netip.Addr, bool) {
	l, err := n.st.LeaseByVM(ctx, vm)
	return l.Addr, err == nil
}

func (n *HostNetwork) Addrs(ctx context.Context) (map[string]netip.Addr, error) {
	ls, err := n.st.Leases(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]netip.Addr, len(ls))
	for _, l := range ls {
		out[l.VM] = l.Addr
	}
	return out, nil
}

func (n *HostNetwork) CheckConfig(ctx context.Context, running func(string) bool) error {
	return network.CheckConfigChange(ctx, n.db, n.cfg, running)
}
