package vms

import (
	"context"
	"fmt"

	"banger/api"
	"banger/internal/store"
	"banger/internal/vmm"
)

// reconcileVMs runs at start: VMs whose process still lives are adopted
// (pid and start time must match) and watched; the rest are marked
// stopped with their TAP released. A VM caught half-created by a crash
// is removed entirely, as its create would have done on failure.
func (m *Manager) reconcileVMs(ctx context.Context) error {
	rows, err := m.store.VMs(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		h := r.Handle
		savePaused := takePausedMarker(r)
		if m.reconcileSnapshot(ctx, r) {
			continue
		}
		if r.State == api.VMCreating {
			m.log.Warn("removing vm left half-created by a crash", "vm", r.Name)
			if _, err := m.endVMProcess(ctx, r, h, "of its interrupted boot"); err != nil {
				continue
			}
			if h != nil {
				m.releaseVMM(ctx, r.Name, h)
			}
			m.forgetVM(r)
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being created when the daemon stopped; removed it")
			continue
		}
		if r.State == api.VMStarting && h != nil {
			// Its boot never finished (no agent, no pinned host key):
			// stop it rather than adopt a VM in an unknown state.
			if _, err := m.endVMProcess(ctx, r, h, "of its interrupted boot"); err != nil {
				continue
			}
			m.markStopped(r.Name, h, "the daemon stopped while the vm was booting; start it again")
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was booting when the daemon stopped; stopped it (start it again with 'banger vm start "+r.Name+"')")
			continue
		}
		if h == nil {
			if r.State != api.VMStopped && r.State != api.VMError {
				r.State = api.VMStopped
				m.saveVM(r)
			}
			continue
		}
		if err := m.driver.Adopt(ctx, h); err != nil {
			// A process that runs but cannot be managed (control socket
			// gone, API wedged) is ended, or a later start would boot a
			// second VMM on the same disks.
			ended, kerr := m.endVMProcess(ctx, r, h, fmt.Sprintf("runs but cannot be managed (%v) and", err))
			if kerr != nil {
				continue
			}
			msg := "vm " + r.Name + " was found stopped when the daemon started"
			if ended {
				msg = fmt.Sprintf("vm %s could not be re-adopted (%v); its process %d was stopped", r.Name, err, h.PID)
			}
			m.markStopped(r.Name, h, "")
			m.events.Event(ctx, "warn", "vm/"+r.Name, msg)
			continue
		}
		if savePaused {
			r = m.resumeAfterCrash(ctx, r)
		}
		m.adopted(ctx, r)
	}
	return nil
}

// endVMProcess ends h's process if it still runs, reporting whether it
// did; what says, in the error event, what is wrong with the process when
// it cannot be killed.
func (m *Manager) endVMProcess(ctx context.Context, r store.VM, h *vmm.Handle, what string) (bool, error) {
	if h == nil || !vmm.Alive(h.PID, h.StartTime) {
		return false, nil
	}
	if err := vmm.Terminate(ctx, h, m.stopTimeouts.Term); err != nil {
		m.log.Error("cannot end vm process", "vm", r.Name, "pid", h.PID, "err", err)
		m.events.Event(ctx, "error", "vm/"+r.Name, fmt.Sprintf("vm %s: the process %d %s cannot be killed (%v); kill it by hand", r.Name, h.PID, what, err))
		return false, err
	}
	return true, nil
}

// adopted takes a live VM back under management.
func (m *Manager) adopted(ctx context.Context, r store.VM) {
	h := r.Handle
	if r.State != api.VMRunning && r.State != api.VMPaused {
		r.State = api.VMRunning
		m.saveVM(r)
	}
	m.watch(r)
	m.setPaused(r.Name, r.State == api.VMPaused)
	m.log.Info("re-adopted running vm", "vm", r.Name, "pid", h.PID)
}

// vmAlive reports, by name, whether a VM's process still runs or its
// saved memory (suspended) holds its guest's network settings.
func (m *Manager) vmAlive(ctx context.Context) func(string) bool {
	alive := map[string]bool{}
	rows, _ := m.store.VMs(ctx)
	for _, r := range rows {
		if h := r.Handle; r.State == api.VMSuspended || h != nil && vmm.Alive(h.PID, h.StartTime) {
			alive[r.Name] = true
		}
	}
	return func(vm string) bool { return alive[vm] }
}
