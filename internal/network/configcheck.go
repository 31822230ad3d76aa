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

// CheckConfigChange compares the network settings the lease table was
// made with (recorded in the store) against cfg; the daemon calls it at
// start. Unchanged or first seen: it records cfg and returns nil. Changed
// while VMs for which running reports true hold leases: it returns an
// errdefs.Conflict error naming them and what to do, and changes nothing.
// Changed with no VM running: leases that no longer fit the new cidr are
// dropped (their VMs get new addresses when they next start), the release
// history of an old cidr is forgotten, and cfg is recorded.
func CheckConfigChange(ctx context.Context, db Store, cfg config.Config, running func(vm string) bool) error {
	want := store.NetworkConfig{BridgeName: cfg.BridgeName, BridgeIP: cfg.BridgeIP, CIDR: cfg.CIDR.Masked()}
	err := db.Tx(ctx, func(tx StoreTx) error {
		old, err := tx.NetworkConfig(ctx)
		if errors.Is(err, store.ErrNoRow) {
			return tx.PutNetworkConfig(ctx, want)
		}
		if err != nil {
			return err
		}
		changes := settingChanges(old, want)
		if len(changes) == 0 {
			return nil
		}
		leases, err := tx.Leases(ctx)
		if err != nil {
			return err
		}
		var live []string
		for _, l := range leases {
			if running != nil && running(l.VM) {
				live = append(live, l.VM)
			}
		}
		if len(live) > 0 {
			return errdefs.Conflict("network settings changed while VMs still use the old network (%s; running: %s); "+
				"put the old values back in config.toml, or stop those VMs first; then restart the daemon and run %s to rebuild the bridge",
				strings.Join(changes, ", "), strings.Join(live, ", "), setupQuoted)
		}
		return rebase(ctx, tx, leases, old, want)
	})
	if err != nil {
		return fmt.Errorf("checking network settings: %w", err)
	}
	return nil
}

// rebase drops leases the new settings cannot keep and records them.
func rebase(ctx context.Context, tx StoreTx, leases []store.Lease, old, want store.NetworkConfig) error {
	ipam := &IPAM{prefix: want.CIDR, gateway: want.BridgeIP}
	for _, l := range leases {
		if ipam.usable(l.Addr) {
			continue
		}
		if _, err := tx.DeleteLease(ctx, l.VM); err != nil {
			return err
		}
	}
	if old.CIDR != want.CIDR {
		if err := tx.ForgetReleases(ctx); err != nil {
			return err
		}
	}
	return tx.PutNetworkConfig(ctx, want)
}

// settings are the parts of a Spec that VMs' addresses depend on.
func (s Spec) settings() store.NetworkConfig {
	return store.NetworkConfig{BridgeName: s.Bridge, BridgeIP: s.BridgeIP, CIDR: s.CIDR}
}

// settingChanges lists the settings that differ, as "key old -> new".
func settingChanges(old, cur store.NetworkConfig) []string {
	var out []string
	if old.BridgeName != cur.BridgeName {
		out = append(out, fmt.Sprintf("bridge_name %s -> %s", old.BridgeName, cur.BridgeName))
	}
	if old.BridgeIP != cur.BridgeIP {
		out = append(out, fmt.Sprintf("bridge_ip %s -> %s", old.BridgeIP, cur.BridgeIP))
	}
	if old.CIDR != cur.CIDR {
		out = append(out, fmt.Sprintf("cidr %s -> %s", old.CIDR, cur.CIDR))
	}
	return out
}
