package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"banger/api"
)

// VMNetwork returns the egress policy recorded for vm; ok=false when none
// is (the VM predates policies, or has the default).
func (t *Reader) VMNetwork(ctx context.Context, vm string) (p api.NetworkPolicy, ok bool, err error) {
	var allow string
	err = t.q.QueryRowContext(ctx, `SELECT mode, allow, allow_lan FROM vm_network WHERE vm = ?`, vm).Scan(&p.Mode, &allow, &p.AllowLAN)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NetworkPolicy{}, false, nil
	}
	if err != nil {
		return api.NetworkPolicy{}, false, fmt.Errorf("reading the network policy of vm %q: %w", vm, err)
	}
	if err := json.Unmarshal([]byte(allow), &p.Allow); err != nil {
		return api.NetworkPolicy{}, false, fmt.Errorf("reading the network policy of vm %q: %w", vm, err)
	}
	if len(p.Allow) == 0 {
		p.Allow = nil
	}
	return p, true, nil
}

// VMNetworks returns every recorded policy by VM name.
func (t *Reader) VMNetworks(ctx context.Context) (map[string]api.NetworkPolicy, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT vm, mode, allow, allow_lan FROM vm_network`)
	if err != nil {
		return nil, fmt.Errorf("listing network policies: %w", err)
	}
	defer rows.Close()
	out := map[string]api.NetworkPolicy{}
	for rows.Next() {
		var vm, allow string
		var p api.NetworkPolicy
		if err := rows.Scan(&vm, &p.Mode, &allow, &p.AllowLAN); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(allow), &p.Allow); err != nil {
			return nil, fmt.Errorf("reading the network policy of vm %q: %w", vm, err)
		}
		if len(p.Allow) == 0 {
			p.Allow = nil
		}
		out[vm] = p
	}
	return out, rows.Err()
}

// PutVMNetwork records vm's egress policy.
func (t *Tx) PutVMNetwork(ctx context.Context, vm string, p api.NetworkPolicy) error {
	allow, err := json.Marshal(p.Allow)
	if err != nil {
		return err
	}
	if p.Allow == nil {
		allow = []byte("[]")
	}
	_, err = t.q.ExecContext(ctx, `INSERT OR REPLACE INTO vm_network (vm, mode, allow, allow_lan) VALUES (?,?,?,?)`, vm, p.Mode, string(allow), p.AllowLAN)
	if err != nil {
		return fmt.Errorf("recording the network policy of vm %q: %w", vm, err)
	}
	return nil
}
