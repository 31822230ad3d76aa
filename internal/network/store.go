package network

import (
	"context"
	"net/netip"

	"banger/internal/store"
)

// StoreTx is what the network state needs from one transaction. *store.Tx
// implements it; tests use an in-memory fake. Getters return
// store.ErrNoRow when nothing matches.
type StoreTx interface {
	Leases(ctx context.Context) ([]store.Lease, error)
	LeaseByVM(ctx context.Context, vm string) (store.Lease, error)
	LeaseByAddr(ctx context.Context, addr netip.Addr) (store.Lease, error)
	PutLease(ctx context.Context, l store.Lease) error
	DeleteLease(ctx context.Context, vm string) (bool, error)
	Releases(ctx context.Context) ([]store.Release, error)
	ForgetReleases(ctx context.Context) error

	NetworkConfig(ctx context.Context) (store.NetworkConfig, error)
	PutNetworkConfig(ctx context.Context, c store.NetworkConfig) error

	TapAssignments(ctx context.Context) ([]store.TapAssignment, error)
	AssignTap(ctx context.Context, tap, vm string) error
	UnassignTap(ctx context.Context, vm string) error
}

// Store runs fn in one transaction, committing when it returns nil.
// Allocation reads and writes inside one transaction, so concurrent
// allocations never hand out the same address or TAP.
type Store interface {
	Tx(ctx context.Context, fn func(StoreTx) error) error
}

// FromStore adapts banger's state database.
func FromStore(s *store.Store) Store { return dbStore{s} }

type dbStore struct{ s *store.Store }

func (d dbStore) Tx(ctx context.Context, fn func(StoreTx) error) error {
	return d.s.Tx(ctx, func(tx *store.Tx) error { return fn(tx) })
}
