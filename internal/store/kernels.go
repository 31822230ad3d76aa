package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"banger/api"
)

const kernelCols = `name, version, arch, description, dir, kernel, initrd, modules, sha256, size, source, created_at`

func scanKernel(row interface{ Scan(...any) error }) (api.Kernel, error) {
	var k api.Kernel
	var created string
	err := row.Scan(&k.Name, &k.Version, &k.Arch, &k.Description, &k.Dir, &k.Kernel, &k.Initrd, &k.Modules,
		&k.SHA256, &k.Size, &k.Source, &created)
	k.CreatedAt = parseTime(created)
	return k, err
}

// Kernels lists local kernels ordered by name.
func (t *Reader) Kernels(ctx context.Context) ([]api.Kernel, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT `+kernelCols+` FROM kernels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing kernels: %w", err)
	}
	defer rows.Close()
	out := []api.Kernel{}
	for rows.Next() {
		k, err := scanKernel(rows)
		if err != nil {
			return nil, fmt.Errorf("reading kernel row: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Kernel returns one kernel, or ErrNoRow.
func (t *Reader) Kernel(ctx context.Context, name string) (api.Kernel, error) {
	k, err := scanKernel(t.q.QueryRowContext(ctx, `SELECT `+kernelCols+` FROM kernels WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Kernel{}, ErrNoRow
	}
	if err != nil {
		return api.Kernel{}, fmt.Errorf("reading kernel %q: %w", name, err)
	}
	return k, nil
}

// PutKernel inserts or replaces a kernel row.
func (t *Tx) PutKernel(ctx context.Context, k api.Kernel) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := t.q.ExecContext(ctx, `INSERT OR REPLACE INTO kernels (`+kernelCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		k.Name, k.Version, k.Arch, k.Description, k.Dir, k.Kernel, k.Initrd, k.Modules, k.SHA256, k.Size, k.Source, formatTime(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("writing kernel %q: %w", k.Name, err)
	}
	return nil
}

// DeleteKernel removes a kernel row.
func (t *Tx) DeleteKernel(ctx context.Context, name string) error {
	if _, err := t.q.ExecContext(ctx, `DELETE FROM kernels WHERE name = ?`, name); err != nil {
		return fmt.Errorf("deleting kernel %q: %w", name, err)
	}
	return nil
}

// ImagesUsingKernel names the images that boot with kernel ref name.
func (t *Reader) ImagesUsingKernel(ctx context.Context, name string) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT name FROM images WHERE kernel_ref = ? ORDER BY name`, name)
	if err != nil {
		return nil, fmt.Errorf("listing images using kernel %q: %w", name, err)
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
