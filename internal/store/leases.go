package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Lease ties a VM (by name) to an address of the guest network until the
// VM is deleted.
type Lease struct {
	VM        string
	Addr      netip.Addr
	MAC       string
	CreatedAt time.Time
}

// Release records when an address was last given back. Seq orders
// releases: a higher Seq was released later.
type Release struct {
	Addr       netip.Addr
	Seq        int64
	ReleasedAt time.Time
}

// NetworkConfig is the network settings the lease table was made for.
type NetworkConfig struct {
	BridgeName string
	BridgeIP   netip.Addr
	CIDR       netip.Prefix
	UpdatedAt  time.Time
}

// TapAssignment records which pool TAP a VM holds.
type TapAssignment struct {
	Tap        string
	VM         string
	AssignedAt time.Time
}

const leaseCols = `vm, ip, mac, created_at`

func scanLease(row interface{ Scan(...any) error }) (Lease, error) {
	var l Lease
	var ip, created string
	if err := row.Scan(&l.VM, &ip, &l.MAC, &created); err != nil {
		return Lease{}, err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return Lease{}, fmt.Errorf("lease of %q holds bad address %q: %w", l.VM, ip, err)
	}
	l.Addr, l.CreatedAt = a, parseTime(created)
	return l, nil
}

// Leases lists every lease ordered by VM name.
func (t *Reader) Leases(ctx context.Context) ([]Lease, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+leaseCols+` FROM leases ORDER BY vm`)
	if err != nil {
		return nil, fmt.Errorf("listing leases: %w", err)
	}
	defer rows.Close()
	out := []Lease{}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("reading lease row: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// LeaseByVM returns the lease of a VM (names compare case-insensitively),
// or ErrNoRow.
func (t *Reader) LeaseByVM(ctx context.Context, vm string) (Lease, error) {
	return t.oneLease(ctx, `SELECT `+leaseCols+` FROM leases WHERE vm = ?`, vm)
}

// LeaseByAddr returns the lease holding addr, or ErrNoRow.
func (t *Reader) LeaseByAddr(ctx context.Context, addr netip.Addr) (Lease, error) {
	return t.oneLease(ctx, `SELECT `+leaseCols+` FROM leases WHERE ip = ?`, addr.String())
}

func (t *Reader) oneLease(ctx context.Context, query string, arg any) (Lease, error) {
	l, err := scanLease(t.q.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, ErrNoRow
	}
	if err != nil {
		return Lease{}, fmt.Errorf("reading lease %v: %w", arg, err)
	}
	return l, nil
}

// PutLease inserts a lease. It fails when the VM or the address already
// holds one: leases are never silently replaced.
func (t *Tx) PutLease(ctx context.Context, l Lease) error {
	if l.CreatedAt.IsZero() {
		l.CreatedAt = time.Now()
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO leases (`+leaseCols+`) VALUES (?,?,?,?)`,
		l.VM, l.Addr.String(), l.MAC, formatTime(l.CreatedAt))
	if err != nil {
		return fmt.Errorf("writing lease %s for %q: %w", l.Addr, l.VM, err)
	}
	return nil
}

// DeleteLease removes the lease of vm and records its address as just
// released. It reports whether there was a lease.
func (t *Tx) DeleteLease(ctx context.Context, vm string) (bool, error) {
	l, err := t.LeaseByVM(ctx, vm)
	if errors.Is(err, ErrNoRow) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := t.q.ExecContext(ctx, `DELETE FROM leases WHERE vm = ?`, vm); err != nil {
		return false, fmt.Errorf("deleting lease of %q: %w", vm, err)
	}
	_, err = t.q.ExecContext(ctx, `INSERT OR REPLACE INTO lease_releases (ip, seq, released_at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM lease_releases), ?)`, l.Addr.String(), now())
	if err != nil {
		return false, fmt.Errorf("recording release of %s: %w", l.Addr, err)
	}
	return true, nil
}

// Releases lists when addresses were last released, oldest first.
func (t *Reader) Releases(ctx context.Context) ([]Release, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT ip, seq, released_at FROM lease_releases ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("listing released addresses: %w", err)
	}
	defer rows.Close()
	out := []Release{}
	for rows.Next() {
		var r Release
		var ip, at string
		if err := rows.Scan(&ip, &r.Seq, &at); err != nil {
			return nil, fmt.Errorf("reading release row: %w", err)
		}
		if r.Addr, err = netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("release row holds bad address %q: %w", ip, err)
		}
		r.ReleasedAt = parseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ForgetReleases clears the release history, for when the network it
// described is gone.
func (t *Tx) ForgetReleases(ctx context.Context) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM lease_releases`); err != nil {
		return fmt.Errorf("clearing released addresses: %w", err)
	}
	return nil
}

// NetworkConfig returns the recorded network settings, or ErrNoRow.
func (t *Reader) NetworkConfig(ctx context.Context) (NetworkConfig, error) {
	var c NetworkConfig
	var ip, cidr, updated string
	err := t.q.QueryRowContext(ctx, `SELECT bridge_name, bridge_ip, cidr, updated_at FROM network_config WHERE id = 1`).
		Scan(&c.BridgeName, &ip, &cidr, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return NetworkConfig{}, ErrNoRow
	}
	if err != nil {
		return NetworkConfig{}, fmt.Errorf("reading network settings: %w", err)
	}
	if c.BridgeIP, err = netip.ParseAddr(ip); err != nil {
		return NetworkConfig{}, fmt.Errorf("recorded bridge address %q: %w", ip, err)
	}
	if c.CIDR, err = netip.ParsePrefix(cidr); err != nil {
		return NetworkConfig{}, fmt.Errorf("recorded cidr %q: %w", cidr, err)
	}
	c.UpdatedAt = parseTime(updated)
	return c, nil
}

// PutNetworkConfig records the network settings.
func (t *Tx) PutNetworkConfig(ctx context.Context, c NetworkConfig) error {
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO network_config (id, bridge_name, bridge_ip, cidr, updated_at) VALUES (1, ?, ?, ?, ?)`,
		c.BridgeName, c.BridgeIP.String(), c.CIDR.String(), now())
	if err != nil {
		return fmt.Errorf("recording network settings: %w", err)
	}
	return nil
}

// TapAssignments lists which VM holds which TAP, ordered by TAP name.
func (t *Reader) TapAssignments(ctx context.Context) ([]TapAssignment, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT tap, vm, assigned_at FROM tap_assignments ORDER BY tap`)
	if err != nil {
		return nil, fmt.Errorf("listing tap assignments: %w", err)
	}
	defer rows.Close()
	out := []TapAssignment{}
	for rows.Next() {
		var a TapAssignment
		var at string
		if err := rows.Scan(&a.Tap, &a.VM, &at); err != nil {
			return nil, fmt.Errorf("reading tap assignment row: %w", err)
		}
		a.AssignedAt = parseTime(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AssignTap records that vm holds tap. It fails when either is taken.
func (t *Tx) AssignTap(ctx context.Context, tap, vm string) error {
	if _, err := t.q.ExecContext(ctx, `INSERT INTO tap_assignments (tap, vm, assigned_at) VALUES (?, ?, ?)`, tap, vm, now()); err != nil {
		return fmt.Errorf("assigning tap %s to %q: %w", tap, vm, err)
	}
	return nil
}

// UnassignTap frees the TAP vm holds, if any.
func (t *Tx) UnassignTap(ctx context.Context, vm string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM tap_assignments WHERE vm = ?`, vm); err != nil {
		return fmt.Errorf("freeing the tap of %q: %w", vm, err)
	}
	return nil
}
