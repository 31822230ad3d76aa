package store

import (
	"context"
	"fmt"
)

// The credentials a VM has ever received (migration 0007): the tools
// whose files an auth sync put into its guest, or that it inherited from
// the VM or template it was restored from. Rows are only added; they go
// when the VM's row does.

// VMCredentials lists the tools whose credentials vm has ever received,
// sorted by name; empty for none.
func (t *Reader) VMCredentials(ctx context.Context, vm string) ([]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT tool FROM vm_credentials WHERE vm = ? ORDER BY tool`, vm)
	if err != nil {
		return nil, fmt.Errorf("reading the credentials vm %q received: %w", vm, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var tool string
		if err := rows.Scan(&tool); err != nil {
			return nil, err
		}
		out = append(out, tool)
	}
	return out, rows.Err()
}

// AddVMCredentials records that vm has received the credentials of tools
// (besides those it had).
func (t *Tx) AddVMCredentials(ctx context.Context, vm string, tools []string) error {
	for _, tool := range tools {
		if _, err := t.q.ExecContext(ctx, `INSERT OR IGNORE INTO vm_credentials (vm, tool) VALUES (?, ?)`, vm, tool); err != nil {
			return fmt.Errorf("recording the credentials vm %q received: %w", vm, err)
		}
	}
	return nil
}
