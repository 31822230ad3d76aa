package network

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"banger/internal/store"
)

// memStore is an in-memory Store: Tx works on a copy and commits it when
// fn succeeds, one transaction at a time.
type memStore struct {
	mu    sync.Mutex
	state memState
}

type memState struct {
	leases   map[string]store.Lease // by lowercase VM name
	releases map[netip.Addr]int64
	seq      int64
	cfg      *store.NetworkConfig
	taps     map[string]string // tap -> vm
}

func newMemStore() *memStore {
	return &memStore{state: memState{leases: map[string]store.Lease{}, releases: map[netip.Addr]int64{}, taps: map[string]string{}}}
}

func (m *memStore) Tx(ctx context.Context, fn func(StoreTx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{memState{leases: maps.Clone(m.state.leases), releases: maps.Clone(m.state.releases),
		seq: m.state.seq, cfg: m.state.cfg, taps: maps.Clone(m.state.taps)}}
	if err := fn(tx); err != nil {
		return err
	}
	m.state = tx.memState
	return nil
}

type memTx struct{ memState }

func (t *memTx) Leases(ctx context.Context) ([]store.Lease, error) {
	var out []store.Lease
	for _, k := range slices.Sorted(maps.Keys(t.leases)) {
		out = append(out, t.leases[k])
	}
	return out, nil
}

func (t *memTx) LeaseByVM(ctx context.Context, vm string) (store.Lease, error) {
	l, ok := t.leases[strings.ToLower(vm)]
	if !ok {
		return store.Lease{}, store.ErrNoRow
	}
	return l, nil
}

func (t *memTx) LeaseByAddr(ctx context.Context, a netip.Addr) (store.Lease, error) {
	for _, l := range t.leases {
		if l.Addr == a {
			return l, nil
		}
	}
	return store.Lease{}, store.ErrNoRow
}

func (t *memTx) PutLease(ctx context.Context, l store.Lease) error {
	if _, err := t.LeaseByAddr(ctx, l.Addr); err == nil {
		return errors.New("address taken")
	}
	if _, ok := t.leases[strings.ToLower(l.VM)]; ok {
		return errors.New("vm has a lease")
	}
	t.leases[strings.ToLower(l.VM)] = l
	return nil
}

func (t *memTx) DeleteLease(ctx context.Context, vm string) (bool, error) {
	l, ok := t.leases[strings.ToLower(vm)]
	if !ok {
		return false, nil
	}
	delete(t.leases, strings.ToLower(vm))
	t.seq++
	t.releases[l.Addr] = t.seq
	return true, nil
}

func (t *memTx) Releases(ctx context.Context) ([]store.Release, error) {
	var out []store.Release
	for a, s := range t.releases {
		out = append(out, store.Release{Addr: a, Seq: s})
	}
	slices.SortFunc(out, func(a, b store.Release) int { return int(a.Seq - b.Seq) })
	return out, nil
}

func (t *memTx) ForgetReleases(ctx context.Context) error { clear(t.releases); return nil }

func (t *memTx) NetworkConfig(ctx context.Context) (store.NetworkConfig, error) {
	if t.cfg == nil {
		return store.NetworkConfig{}, store.ErrNoRow
	}
	return *t.cfg, nil
}

func (t *memTx) PutNetworkConfig(ctx context.Context, c store.NetworkConfig) error {
	t.cfg = &c
	return nil
}

func (t *memTx) TapAssignments(ctx context.Context) ([]store.TapAssignment, error) {
	var out []store.TapAssignment
	for _, tap := range slices.Sorted(maps.Keys(t.taps)) {
		out = append(out, store.TapAssignment{Tap: tap, VM: t.taps[tap]})
	}
	return out, nil
}

func (t *memTx) AssignTap(ctx context.Context, tap, vm string) error {
	if _, ok := t.taps[tap]; ok {
		return errors.New("tap taken")
	}
	t.taps[tap] = vm
	return nil
}

func (t *memTx) UnassignTap(ctx context.Context, vm string) error {
	maps.DeleteFunc(t.taps, func(_, v string) bool { return strings.EqualFold(v, vm) })
	return nil
}
