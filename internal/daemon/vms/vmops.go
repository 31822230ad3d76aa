package vms

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/vmm"
)

// ConsoleLog writes the VM's serial console log to w, then, with
// follow, new output until ctx ends.
func (m *Manager) ConsoleLog(ctx context.Context, name string, w io.Writer, follow bool) error {
	row, err := m.Row(ctx, name)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(row.Dir, ConsoleLog))
	if errors.Is(err, os.ErrNotExist) {
		return errdefs.NotFound("vm %q has no console log yet; it has not booted", name)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// Start at the first byte kept: what a trim cut out is a hole.
	if err := vmm.SeekData(f); err != nil {
		return err
	}
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// SetKeepAlive exempts a VM from auto-stop, or subjects it again.
func (m *Manager) SetKeepAlive(ctx context.Context, name string, keep bool) (api.VM, error) {
	return m.UpdateVM(ctx, name, api.UpdateVMRequest{KeepAlive: &keep})
}
