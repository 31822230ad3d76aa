package vms

import (
	"context"
	"fmt"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/store"
)

// UpdateVM changes a VM's settings (PATCH /v1/vms/{name}): its egress
// policy, its keep-alive, or both. It applies all of them or none: under
// one claim of the VM, the whole request is checked first (something to
// change, the VM exists, the policy is valid and this daemon can enforce
// it), then every change is recorded in one store transaction. A running
// VM gets a new policy at once, without a reboot; the rules are synced
// after the record, as at daemon start; a sync that fails is reported
// (the change stays recorded) and tried again at the next egress poll.
func (m *Manager) UpdateVM(ctx context.Context, name string, req api.UpdateVMRequest) (api.VM, error) {
	if req.KeepAlive == nil && req.Network == nil {
		return api.VM{}, errdefs.Invalid("nothing to change for vm %q; set keep_alive (true or false) or network (a policy)", name)
	}
	release, err := m.claim(name, opUpdate)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	if _, err := vmRow(ctx, &m.store.Reader, name); err != nil {
		return api.VM{}, err
	}
	var policy *api.NetworkPolicy
	if req.Network != nil {
		p, err := m.updatedPolicy(ctx, name, *req.Network)
		if err != nil {
			return api.VM{}, err
		}
		policy = &p
	}
	err = m.store.Tx(ctx, func(tx *store.Tx) error {
		row, err := vmRow(ctx, &tx.Reader, name)
		if err != nil {
			return err
		}
		if policy != nil {
			if err := tx.PutVMNetwork(ctx, name, *policy); err != nil {
				return err
			}
		}
		if req.KeepAlive != nil && row.KeepAlive != *req.KeepAlive {
			row.KeepAlive = *req.KeepAlive
			return tx.PutVM(ctx, row)
		}
		return nil
	})
	if err != nil {
		return api.VM{}, err
	}
	// Both changes are recorded: their events are due whatever the sync
	// does, and a sync that fails is tried again by the egress poll.
	var syncErr error
	if policy != nil {
		shown := m.shownPolicyString(*policy)
		if syncErr = m.syncEgress(ctx); syncErr == nil {
			m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" network policy is now "+shown)
		} else {
			m.events.Event(ctx, "warn", "vm/"+name, fmt.Sprintf("vm %s network policy is recorded as %s, but applying it failed: %v; banger keeps trying", name, shown, syncErr))
		}
	}
	if req.KeepAlive != nil {
		msg := "vm " + name + " is kept alive: auto-stop will not stop it"
		if !*req.KeepAlive {
			msg = "vm " + name + " is no longer kept alive: auto-stop may stop it when idle"
		}
		m.events.Event(ctx, "info", "vm/"+name, msg)
	}
	if syncErr != nil {
		return api.VM{}, fmt.Errorf("vm %s: the change is recorded, but applying its network policy failed (banger keeps trying; see 'banger events --vm %s'): %w", name, name, syncErr)
	}
	return m.VM(ctx, name)
}

// updatedPolicy is the policy req asks a VM to record, checked: a request
// with only allow_lan keeps the VM's mode and list.
func (m *Manager) updatedPolicy(ctx context.Context, name string, req api.NetworkPolicy) (api.NetworkPolicy, error) {
	if req.Mode == "" && len(req.Allow) == 0 {
		if cur := m.networkOf(ctx, name); cur != nil {
			req.Mode, req.Allow = cur.Mode, cur.Allow
		}
	}
	return m.resolvePolicy(&req)
}
