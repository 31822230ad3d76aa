package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"banger/api"
	"banger/internal/vmm"
)

// VM is a VM row: the API's VM (its derived fields, IP, MAC, PID and
// Accel, are not stored) and the driver's handle of its VMM process, nil
// when none runs. The handle is stored as JSON.
type VM struct {
	api.VM
	Handle *vmm.Handle
}

const vmCols = `id, name, image, state, vmm, cpus, memory_mib, disk_bytes, dir, runtime_dir, handle, tap, host_key, keep_alive, last_error, created_at, started_at, stopped_at, auth_sync`

func scanVM(row interface{ Scan(...any) error }) (VM, error) {
	var v VM
	var created, started, stopped, handle, authSync string
	err := row.Scan(&v.ID, &v.Name, &v.Image, &v.State, &v.VMM, &v.CPUs, &v.MemoryMiB, &v.DiskBytes, &v.Dir, &v.RuntimeDir,
		&handle, &v.TAP, &v.HostKey, &v.KeepAlive, &v.LastError, &created, &started, &stopped, &authSync)
	if err != nil {
		return VM{}, err
	}
	v.AuthSync = splitList(authSync)
	v.CreatedAt, v.StartedAt, v.StoppedAt = parseTime(created), parseTime(started), parseTime(stopped)
	if handle != "" {
		v.Handle = new(vmm.Handle)
		if err := json.Unmarshal([]byte(handle), v.Handle); err != nil {
			return VM{}, fmt.Errorf("vm %q has an unreadable vmm handle: %w", v.Name, err)
		}
	}
	return v, nil
}

// VMs lists every VM ordered by name.
func (t *Reader) VMs(ctx context.Context) ([]VM, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+vmCols+` FROM vms ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing vms: %w", err)
	}
	defer rows.Close()
	var out []VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, fmt.Errorf("reading vm row: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VM returns one VM by name, or ErrNoRow.
func (t *Reader) VM(ctx context.Context, name string) (VM, error) {
	v, err := scanVM(t.q.QueryRowContext(ctx, `SELECT `+vmCols+` FROM vms WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return VM{}, ErrNoRow
	}
	if err != nil {
		return VM{}, fmt.Errorf("reading vm %q: %w", name, err)
	}
	return v, nil
}

// PutVM inserts or replaces a VM row.
func (t *Tx) PutVM(ctx context.Context, v VM) error {
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now()
	}
	handle := ""
	if v.Handle != nil {
		b, err := json.Marshal(v.Handle)
		if err != nil {
			return fmt.Errorf("encoding the vmm handle of vm %q: %w", v.Name, err)
		}
		handle = string(b)
	}
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO vms (`+vmCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		v.ID, v.Name, v.Image, v.State, v.VMM, v.CPUs, v.MemoryMiB, v.DiskBytes, v.Dir, v.RuntimeDir,
		handle, v.TAP, v.HostKey, v.KeepAlive, v.LastError, formatTime(v.CreatedAt), optTime(v.StartedAt), optTime(v.StoppedAt),
		strings.Join(v.AuthSync, ","))
	if err != nil {
		return fmt.Errorf("writing vm %q: %w", v.Name, err)
	}
	return nil
}

// DeleteVM removes a VM row.
func (t *Tx) DeleteVM(ctx context.Context, name string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM vms WHERE name = ?`, name); err != nil {
		return fmt.Errorf("deleting vm %q: %w", name, err)
	}
	return nil
}

// VMsUsingImage names the VMs created from image.
func (t *Reader) VMsUsingImage(ctx context.Context, image string) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT name FROM vms WHERE image = ? ORDER BY name`, image)
	if err != nil {
		return nil, fmt.Errorf("listing vms of image %q: %w", image, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// splitList reads a comma-separated column; "" is the empty list.
func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
