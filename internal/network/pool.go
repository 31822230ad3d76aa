package network

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/store"
)

// Pool hands out the TAPs 'banger system setup' created, one per running
// VM. Which VM holds which TAP is kept in the store, so a restarted daemon
// knows; the daemon releases a VM's TAP when the VM stops (or, at start,
// when it finds the VM dead).
type Pool struct {
	names  []string
	bridge string
	uid    int
	db     Store
	links  Links
}

// PoolOptions are what NewPool needs.
type PoolOptions struct {
	// Config names the TAPs (bridge_name, tap_pool_size).
	Config config.Config
	// Store records which VM holds which TAP.
	Store Store
	// UID is the daemon's user: a TAP is handed out only when this user may
	// open it (it owns the TAP, or is root).
	UID int
	// Links reads the TAPs; nil means the host's (netlink).
	Links Links
}

// NewPool returns the pool of cfg's TAPs.
func NewPool(o PoolOptions) *Pool {
	if o.Links == nil {
		o.Links = HostLinks()
	}
	return &Pool{
		names:  TapNames(o.Config.BridgeName, o.Config.TapPoolSize),
		bridge: o.Config.BridgeName,
		uid:    o.UID,
		db:     o.Store,
		links:  o.Links,
	}
}

// Acquire returns the TAP vm holds, giving it the first free usable TAP
// when it holds none. A TAP is usable when it exists, is a TAP on the
// bridge, the daemon's user may open it and no process has it open.
func (p *Pool) Acquire(ctx context.Context, vm string) (string, error) {
	var tap string
	err := p.db.Tx(ctx, func(tx StoreTx) error {
		held, err := tx.TapAssignments(ctx)
		if err != nil {
			return err
		}
		taken := map[string]string{}
		for _, a := range held {
			if strings.EqualFold(a.VM, vm) {
				tap = a.Tap
				return nil
			}
			taken[a.Tap] = a.VM
		}
		var problems []string
		for _, name := range p.names {
			if _, ok := taken[name]; ok {
				continue
			}
			if why := p.unusable(name); why != "" {
				problems = append(problems, why)
				continue
			}
			tap = name
			return tx.AssignTap(ctx, name, vm)
		}
		return p.exhausted(held, problems)
	})
	if err != nil {
		return "", fmt.Errorf("acquiring a tap for %q: %w", vm, err)
	}
	return tap, nil
}

// Release frees the TAP vm holds; releasing when it holds none is fine.
func (p *Pool) Release(ctx context.Context, vm string) error {
	if err := p.db.Tx(ctx, func(tx StoreTx) error { return tx.UnassignTap(ctx, vm) }); err != nil {
		return fmt.Errorf("releasing the tap of %q: %w", vm, err)
	}
	return nil
}

// Held returns the TAP vm holds, or "" when it holds none.
func (p *Pool) Held(ctx context.Context, vm string) (string, error) {
	var tap string
	err := p.db.Tx(ctx, func(tx StoreTx) error {
		held, err := tx.TapAssignments(ctx)
		for _, a := range held {
			if strings.EqualFold(a.VM, vm) {
				tap = a.Tap
			}
		}
		return err
	})
	return tap, err
}

// unusable says why the TAP called name cannot be handed out, or "".
func (p *Pool) unusable(name string) string {
	l, err := p.links.Link(name)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		return name + " does not exist"
	case err != nil:
		return fmt.Sprintf("%s cannot be read: %v", name, err)
	case l.Tap == nil || !l.Tap.TAP:
		return fmt.Sprintf("%s is a %s device, not a tap", name, l.Kind)
	case p.uid != 0 && l.Tap.Owner != p.uid:
		return fmt.Sprintf("%s belongs to uid %d, not to you (uid %d)", name, l.Tap.Owner, p.uid)
	case l.Master != p.bridge:
		return fmt.Sprintf("%s is not attached to bridge %s", name, p.bridge)
	case l.Carrier:
		return name + " is open in another process that banger does not know about"
	}
	return ""
}

func (p *Pool) exhausted(held []store.TapAssignment, problems []string) error {
	if len(problems) > 0 {
		return errdefs.Unavailable("no usable tap in the pool of bridge %s (%s); run %s to create or repair them",
			p.bridge, strings.Join(problems, "; "), setupQuoted)
	}
	vms := make([]string, len(held))
	for i, a := range held {
		vms[i] = a.VM
	}
	return errdefs.Unavailable("all %d taps of the pool are in use (by %s); stop a VM, or raise tap_pool_size in config.toml and run %s",
		len(p.names), strings.Join(vms, ", "), setupQuoted)
}
