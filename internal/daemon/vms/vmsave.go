package vms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"banger/api"
	"banger/internal/fsutil"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Saving a live VM for a fork or a template. Both need the VM's memory
// and device state and copies of its disks of one instant, and the VM as
// it was afterwards: saveLive pauses a running VM, saves its state,
// copies its disks while it stays paused, and runs it again; a paused VM
// is saved as it is and stays paused.
//
// Crash recovery is the same for both. While a running VM is paused for a
// save its row still says running and its directory holds pausedMarker:
// a daemon that dies at any point of the save finds the marker at its
// next start and resumes the VM (vmreconcile.go), so the VM runs on as
// before; a VM that will not resume then is recorded paused, with how to
// resume it. What the save wrote is its caller's, under a name the next
// start removes: a fork's directory (its row is still creating), a
// template's temporary directory (.tmp-NAME-HEX).

// pausedMarker, in a VM's directory, marks it paused by a save. It is
// named for the fork, its first user, and keeps that name so that a
// marker an older daemon left is still found.
const pausedMarker = "fork.paused"

// liveSave says where saveLive puts what it saves, and how.
type liveSave struct {
	// StateDir is created and receives the state; DiskDir, which exists,
	// receives the copies of the disks.
	StateDir, DiskDir string
	// Durable writes the state's description (state.json) and syncs the
	// state and the disks' directory, with Final as the state directory's
	// name once its caller renamed it: a template outlives the daemon. A
	// fork's state is restored at once and removed, and a crash removes
	// it with the half-made fork: it is neither described nor synced, so
	// that its parent is paused no longer than the save and the copies.
	Durable bool
	Final   string
	// Sync flushes the guest's file writes to its disks before the pause,
	// as a template's save always has, so that its disks hold them on
	// their own, not only together with its memory. A fork is restored
	// from both together at once, and its parent is spared the wait.
	Sync bool
}

// saveLive saves the live (running or paused) VM row's state and disks as
// o says and returns the state. A VM that was running runs again
// whatever happens; if it does not, the error says so and it is
// recorded paused.
func (m *Manager) saveLive(ctx context.Context, snap vmm.Snapshotter, row store.VM, o liveSave, p progress.Func) (st vmm.State, err error) {
	h := row.Handle
	if row.State == api.VMRunning {
		if o.Sync {
			p.Step("sync", "flushing the guest's file writes to its disks")
			m.syncGuest(ctx, row.Name, h)
		}
		since, err := m.pauseForSave(ctx, snap, row, p)
		if err != nil {
			return vmm.State{}, err
		}
		defer func() {
			if rerr := m.resumeAfterSave(row, h, since, p); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	p.Step("save", fmt.Sprintf("saving the memory of %s (%d MiB)", row.Name, row.MemoryMiB))
	if o.Durable {
		st, err = writeState(ctx, snap, h, o.StateDir, o.Final)
	} else {
		st, err = saveStateFiles(ctx, snap, h, o.StateDir)
	}
	if err != nil {
		return vmm.State{}, fmt.Errorf("vm %q: %w", row.Name, err)
	}
	if err := copyDisks(ctx, row.Dir, o.DiskDir, p); err != nil {
		return vmm.State{}, err
	}
	if o.Durable {
		if err := fsutil.SyncDir(o.DiskDir); err != nil {
			return vmm.State{}, err
		}
	}
	return st, nil
}

// saveStateFiles saves the paused VM's state into dir, which it creates,
// with no description and no sync.
func saveStateFiles(ctx context.Context, snap vmm.Snapshotter, h *vmm.Handle, dir string) (vmm.State, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return vmm.State{}, fmt.Errorf("creating the state directory: %w", err)
	}
	st, err := snap.SaveState(ctx, h, dir)
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving the vm state: %w", err)
	}
	if err := confineState(&st, dir); err != nil {
		return vmm.State{}, err
	}
	st.Dir = dir
	return st, nil
}

// pauseForSave marks the running VM row paused by a save and pauses it;
// on error it is neither.
func (m *Manager) pauseForSave(ctx context.Context, snap vmm.Snapshotter, row store.VM, p progress.Func) (time.Time, error) {
	marker := filepath.Join(row.Dir, pausedMarker)
	if err := fsutil.WriteFileAtomic(marker, []byte("paused to save its state: "+row.Name+"\n"), 0o600); err != nil {
		return time.Time{}, fmt.Errorf("marking vm %q paused for the save: %w", row.Name, err)
	}
	m.setPaused(row.Name, true)
	p.Step("pause", "pausing "+row.Name)
	since := time.Now()
	if err := snap.Pause(ctx, row.Handle); err != nil {
		// Never paused: nothing to resume, and it is not recorded paused.
		m.setPaused(row.Name, false)
		os.Remove(marker)
		return time.Time{}, fmt.Errorf("pausing vm %q: %w", row.Name, err)
	}
	return since, nil
}

// resumeAfterSave runs a VM paused by a save again and removes its
// marker. A VM that will not run is recorded paused, with the error
// saying how to resume it.
func (m *Manager) resumeAfterSave(row store.VM, h *vmm.Handle, since time.Time, p progress.Func) error {
	snap := m.driver.(vmm.Snapshotter)
	if err := snap.Resume(context.Background(), h); err != nil {
		row.State = api.VMPaused
		m.saveVM(row)
		os.Remove(filepath.Join(row.Dir, pausedMarker))
		return fmt.Errorf("resuming vm %q after saving its state: %w; it is paused: 'banger vm resume %s' runs it", row.Name, err, row.Name)
	}
	m.setPaused(row.Name, false)
	d := time.Since(since).Round(time.Millisecond)
	p.Step("resume", fmt.Sprintf("%s runs again (paused %s)", row.Name, d))
	m.log.Info("vm resumed after saving its state", "vm", row.Name, "paused", d)
	if err := os.Remove(filepath.Join(row.Dir, pausedMarker)); err != nil {
		m.log.Warn("removing the pause marker", "vm", row.Name, "err", err)
	}
	return nil
}

// takePausedMarker removes the mark a save leaves in the directory of
// the VM it paused, reporting whether there was one.
func takePausedMarker(r store.VM) bool {
	marker := filepath.Join(r.Dir, pausedMarker)
	if _, err := os.Stat(marker); err != nil {
		return false
	}
	os.Remove(marker)
	return true
}

// resumeAfterCrash runs again, at daemon start, a live VM that a fork or
// a template save had paused when the daemon stopped, and returns its
// row.
func (m *Manager) resumeAfterCrash(ctx context.Context, r store.VM) store.VM {
	snap, ok := m.driver.(vmm.Snapshotter)
	if !ok || r.State != api.VMRunning {
		return r
	}
	if err := snap.Resume(ctx, r.Handle); err != nil {
		m.log.Warn("resuming a vm paused by an interrupted save", "vm", r.Name, "err", err)
		r.State = api.VMPaused
		m.saveVM(r)
		m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was paused for a fork or a template when the daemon stopped and does not resume ("+err.Error()+"); try 'banger vm resume "+r.Name+"'")
		return r
	}
	m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was paused for a fork or a template when the daemon stopped; it runs on")
	return r
}
