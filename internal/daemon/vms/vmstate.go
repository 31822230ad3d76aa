package vms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// markStopped records that h's process is gone: the row is stopped and
// its TAP released. It reports false when the row had already moved on
// (another handle, or deleted).
func (m *Manager) markStopped(name string, h *vmm.Handle, lastErr string) bool {
	ctx := context.Background()
	changed := false
	err := m.store.Tx(ctx, func(tx *store.Tx) error {
		row, err := tx.VM(ctx, name)
		if err != nil {
			return err
		}
		cur := row.Handle
		if cur == nil || cur.PID != h.PID || cur.StartTime != h.StartTime {
			return nil
		}
		row.State, row.Handle, row.TAP, row.StoppedAt = api.VMStopped, nil, "", time.Now()
		if lastErr != "" {
			row.LastError = lastErr
		}
		changed = true
		return tx.PutVM(ctx, row)
	})
	if err != nil && !errors.Is(err, store.ErrNoRow) {
		m.log.Warn("marking vm stopped", "vm", name, "err", err)
	}
	if changed {
		m.releaseVMM(ctx, name, h)
		if m.net != nil {
			if err := m.net.ReleaseTAP(ctx, name); err != nil {
				m.log.Warn("releasing tap", "vm", name, "err", err)
			}
		}
		m.unwatch(name)
	}
	return changed
}

// StartVM boots a stopped VM with its existing disks, or restores a
// suspended one from its saved state (never booting over that state).
func (m *Manager) StartVM(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	return m.startVM(ctx, name, p, false)
}

// StartVMCold boots a VM fresh, discarding the state a suspend saved.
func (m *Manager) StartVMCold(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	return m.startVM(ctx, name, p, true)
}

func (m *Manager) startVM(ctx context.Context, name string, p progress.Func, cold bool) (api.VM, error) {
	release, err := m.claim(name, opStart)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	row, err := m.Row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	if h := row.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		if row.State == api.VMPaused {
			return api.VM{}, errdefs.Conflict("vm %q is paused; resume it with 'banger vm resume %s'", name, name)
		}
		return api.VM{}, errdefs.Conflict("vm %q is already running", name)
	}
	im, err := m.images.Bootable(ctx, row.Image)
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.VM{}, errdefs.Conflict("vm %q boots the kernel of image %q, which was deleted; register an image of that name again ('banger image register --name %s ...'), or delete the vm", name, row.Image, row.Image)
	}
	if err != nil {
		return api.VM{}, err
	}
	if hasState(row) {
		if !cold {
			if err := m.restoreVM(ctx, row, im, p); err != nil {
				return api.VM{}, err
			}
			m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" resumed from its saved state")
			return m.VM(ctx, name)
		}
		if err := discardState(row); err != nil {
			return api.VM{}, err
		}
		m.events.Event(ctx, "info", "vm/"+name, "vm "+name+": its saved state was discarded for a cold boot")
	}
	if err := m.boot(ctx, &row, im, p, false); err != nil {
		return api.VM{}, err
	}
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" started")
	return m.VM(ctx, name)
}

// StopVM shuts a VM down gracefully: the guest agent first, then the
// VMM's power button, then signals, each with a timeout.
func (m *Manager) StopVM(ctx context.Context, name string) (api.VM, error) {
	release, err := m.claim(name, opStop)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	row, err := m.Row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	h := row.Handle
	if h == nil || !vmm.Alive(h.PID, h.StartTime) {
		if h != nil {
			m.markStopped(name, h, "")
		}
		return m.VM(ctx, name)
	}
	if err := m.shutdown(ctx, &row, h); err != nil {
		return api.VM{}, err
	}
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" stopped")
	return m.VM(ctx, name)
}

// shutdown escalates until h's process is gone, then records the stop.
//
// It does not end with its caller's context: a client that goes away
// (Ctrl-C) or a daemon that closes mid-stop must not turn a graceful stop
// into a kill, so every step is bounded by its own timeout instead.
func (m *Manager) shutdown(ctx context.Context, row *store.VM, h *vmm.Handle) error {
	ctx = context.WithoutCancel(ctx)
	t := m.stopTimeouts
	if row.State == api.VMPaused {
		// A frozen guest cannot hear its agent's shutdown: thaw it first.
		if snap, ok := m.driver.(vmm.Snapshotter); ok {
			if err := snap.Resume(ctx, h); err != nil {
				m.log.Warn("resuming a paused vm to stop it", "vm", row.Name, "err", err)
			}
		}
		m.setPaused(row.Name, false)
	}
	row.State = api.VMStopping
	m.saveVM(*row)
	// The guest first: it syncs and unmounts its disks. After a daemon
	// restart there is no connection yet, so make one (within the same
	// budget); an agent that is PID 1 has no other way to hear of it.
	actx, cancel := context.WithTimeout(ctx, t.Agent)
	if cl, err := m.agentClient(actx, row.Name, h); err == nil {
		if err := cl.Shutdown(actx, false); err == nil {
			vmm.WaitExit(actx, h)
		}
	} else {
		m.log.Warn("stopping vm without its agent", "vm", row.Name, "err", err)
	}
	cancel()
	if vmm.Alive(h.PID, h.StartTime) {
		vctx, cancel := context.WithTimeout(ctx, t.VMM)
		if err := m.driver.Stop(vctx, h); err == nil {
			m.driver.Wait(vctx, h)
		}
		cancel()
	}
	if vmm.Alive(h.PID, h.StartTime) {
		if err := vmm.Terminate(ctx, h, t.Term); err != nil {
			return fmt.Errorf("killing vm process %d: %w", h.PID, err)
		}
	}
	// markStopped releases the VMM's files; when the exit watcher marked
	// it first, release them here too, so they are gone when stop returns.
	if !m.markStopped(row.Name, h, "") {
		m.releaseVMM(ctx, row.Name, h)
	}
	return nil
}

// releaseVMM lets a driver remove what an exited VMM left on the host.
func (m *Manager) releaseVMM(ctx context.Context, name string, h *vmm.Handle) {
	rel, ok := m.driver.(vmm.Releaser)
	if !ok || vmm.Alive(h.PID, h.StartTime) {
		return
	}
	if err := rel.Release(ctx, h); err != nil {
		m.log.Warn("releasing vm files", "vm", name, "err", err)
	}
}

// RestartVM stops and starts a VM.
func (m *Manager) RestartVM(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	if _, err := m.StopVM(ctx, name); err != nil {
		return api.VM{}, err
	}
	return m.StartVM(ctx, name, p)
}
