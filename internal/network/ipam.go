package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/store"
)

// IPAM leases addresses of the guest network to VMs. A lease lasts until
// the VM is deleted (stopping keeps it, so a VM keeps its address and
// name). The network address, the broadcast address and bridge_ip are never
// leased. Allocation takes the lowest address never handed out before;
// once every address has been used it takes the one released longest ago,
// so a deleted VM's address is not given to the next VM straight away
// (stale ARP entries, known_hosts lines and open connections point at it).
//
// IPAM also answers DNS for the daemon's server (it is a Resolver): every
// leased VM resolves, running or not.
type IPAM struct {
	db      Store
	prefix  netip.Prefix
	gateway netip.Addr
}

// NewIPAM returns an allocator for cfg's cidr and bridge_ip over db.
func NewIPAM(db Store, cfg config.Config) *IPAM {
	return &IPAM{db: db, prefix: cfg.CIDR.Masked(), gateway: cfg.BridgeIP}
}

// Allocate returns vm's lease, making one if it has none. Calling it again
// for the same VM returns the same lease.
func (p *IPAM) Allocate(ctx context.Context, vm string) (store.Lease, error) {
	if vm == "" {
		return store.Lease{}, errdefs.Invalid("allocating an address: empty VM name")
	}
	var out store.Lease
	err := p.db.Tx(ctx, func(tx StoreTx) error {
		l, err := tx.LeaseByVM(ctx, vm)
		switch {
		case err == nil && p.usable(l.Addr):
			out = l
			return nil
		case err == nil: // made for another cidr; CheckConfigChange normally clears these
			if _, err := tx.DeleteLease(ctx, vm); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNoRow):
			return err
		}
		addr, err := p.pick(ctx, tx)
		if err != nil {
			return err
		}
		out = store.Lease{VM: vm, Addr: addr, MAC: MAC(addr).String()}
		return tx.PutLease(ctx, out)
	})
	if err != nil {
		return store.Lease{}, fmt.Errorf("allocating an address for %q: %w", vm, err)
	}
	return out, nil
}

// Release gives vm's address back; call it when the VM is deleted.
// Releasing a VM without a lease is not an error.
func (p *IPAM) Release(ctx context.Context, vm string) error {
	err := p.db.Tx(ctx, func(tx StoreTx) error {
		_, err := tx.DeleteLease(ctx, vm)
		return err
	})
	if err != nil {
		return fmt.Errorf("releasing the address of %q: %w", vm, err)
	}
	return nil
}

// LeaseOf returns vm's lease, or an errdefs.NotFound error.
func (p *IPAM) LeaseOf(ctx context.Context, vm string) (store.Lease, error) {
	var out store.Lease
	err := p.db.Tx(ctx, func(tx StoreTx) (err error) { out, err = tx.LeaseByVM(ctx, vm); return err })
	if errors.Is(err, store.ErrNoRow) {
		return store.Lease{}, errdefs.NotFound("VM %q holds no address", vm)
	}
	return out, err
}

// Leases lists every lease.
func (p *IPAM) Leases(ctx context.Context) ([]store.Lease, error) {
	var out []store.Lease
	err := p.db.Tx(ctx, func(tx StoreTx) (err error) { out, err = tx.Leases(ctx); return err })
	return out, err
}

// AddrOf implements Resolver.
func (p *IPAM) AddrOf(ctx context.Context, name string) (netip.Addr, bool, error) {
	l, err := p.LeaseOf(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return netip.Addr{}, false, nil
	}
	return l.Addr, err == nil, err
}

// NameOf implements Resolver.
func (p *IPAM) NameOf(ctx context.Context, addr netip.Addr) (string, bool, error) {
	var l store.Lease
	err := p.db.Tx(ctx, func(tx StoreTx) (err error) { l, err = tx.LeaseByAddr(ctx, addr); return err })
	if errors.Is(err, store.ErrNoRow) {
		return "", false, nil
	}
	return strings.ToLower(l.VM), err == nil, err
}

// usable reports whether addr may be leased in this network.
func (p *IPAM) usable(addr netip.Addr) bool {
	return p.prefix.Contains(addr) && addr != p.prefix.Addr() && addr != lastAddr(p.prefix) && addr != p.gateway
}

// pick chooses the lowest free address never released, else the free
// address released longest ago.
func (p *IPAM) pick(ctx context.Context, tx StoreTx) (netip.Addr, error) {
	leases, err := tx.Leases(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	rels, err := tx.Releases(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	used := make(map[netip.Addr]bool, len(leases))
	for _, l := range leases {
		used[l.Addr] = true
	}
	released := make(map[netip.Addr]int64, len(rels))
	for _, r := range rels {
		released[r.Addr] = r.Seq
	}
	var lru netip.Addr
	var lruSeq int64
	for a := p.prefix.Addr().Next(); a.IsValid() && p.prefix.Contains(a); a = a.Next() {
		if used[a] || !p.usable(a) {
			continue
		}
		seq, ok := released[a]
		if !ok {
			return a, nil
		}
		if !lru.IsValid() || seq < lruSeq {
			lru, lruSeq = a, seq
		}
	}
	if lru.IsValid() {
		return lru, nil
	}
	return netip.Addr{}, errdefs.Unavailable(
		"no free address in cidr %s: all %d guest addresses are leased to VMs; delete VMs you no longer need, or set a larger cidr in config.toml while no VM runs",
		p.prefix, guestAddrCount(p.prefix))
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	n := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], n)
	return netip.AddrFrom4(a)
}

// guestAddrCount is how many addresses of p VMs can lease (all but the
// network, broadcast and bridge addresses), capped to fit an int; p may
// come from a request, so it is checked.
func guestAddrCount(p netip.Prefix) int {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0
	}
	host := 32 - p.Bits()
	if host >= 30 {
		return 1 << 30
	}
	return max(0, 1<<host-3)
}
