package vms

import (
	"context"
	"fmt"
	"path/filepath"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// WarmSource is a saved state a new VM starts from instead of booting:
// a template's, or a running VM's for a fork. Its files are only read.
type WarmSource struct {
	// State is the saved memory and device state.
	State vmm.State
	// Dir holds the disk files saved with State, named as in a VM
	// directory (RootfsFile, WorkFile); they are copied (reflink, else
	// sparse) into the new VM's directory.
	Dir string
	// Done, when set, is called once the restore no longer reads the
	// files of State and Dir (restoredone.go); they may go from then on.
	Done func()
}

// restoreAs starts row, a new VM whose row is recorded (creating) and
// whose directory exists, from src: its disks are copied, its VMM is
// restored from the state onto its own TAP, and before the guest uses
// the network it is given its own identity: the host's clock, fresh
// entropy, then its name, MAC, address, machine-id and SSH host keys
// (re-pinned). The caller owns undoing the row and disks on error;
// restoreAs undoes the TAP and process it made.
func (m *Manager) restoreAs(ctx context.Context, src WarmSource, row *store.VM, im api.Image, p progress.Func) (err error) {
	snap, err := m.snapshotter(row.Name)
	if err != nil {
		return err
	}
	snap = doneAfterRestore(snap, src.Done)
	if m.net == nil {
		return errdefs.Unsupported("vm %q: a restored vm needs banger's network to be given its own address; create it with --cold", row.Name)
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	if m.takeSpare(src.Dir, row.Dir) {
		p.Step("disk", "took the template's spare copy of its disks")
		m.refillSpare(filepath.Base(src.Dir))
	} else if err := copyDisks(ctx, src.Dir, row.Dir, p); err != nil {
		return err
	}
	p.Step("restore", fmt.Sprintf("restoring %s from a saved state (%s)", row.Name, bytesize.Format(uint64(max(src.State.Bytes, 0)))))
	return m.restoreNew(ctx, snap, row, im, src.State, &undo, p)
}
