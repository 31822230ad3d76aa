package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"banger/internal/agent"
	"banger/internal/errdefs"
	"banger/internal/vmm"
)

// ConsoleLog writes the VM's serial console log to w, then, with
// follow, new output until ctx ends.
func (d *Daemon) ConsoleLog(ctx context.Context, name string, w io.Writer, follow bool) error {
	row, err := d.vmRow(ctx, d.store.Read(), name)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(row.Dir, consoleLog))
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

// Ports lists the guest's listening sockets.
func (d *Daemon) Ports(ctx context.Context, name string) ([]agent.Port, error) {
	cl, err := d.Agent(ctx, name)
	if err != nil {
		return nil, err
	}
	return cl.Ports(ctx)
}
