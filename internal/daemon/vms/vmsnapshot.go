package vms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/bytesize"
	"banger/internal/fsutil"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Pause, suspend and restore (docs/vms.md). A paused VM keeps its VMM
// process, memory, TAP and agent connection; its vCPUs are frozen. A
// suspended VM's memory and device state are saved in its directory and
// it holds nothing else: no VMM process, no memory, no TAP (its address
// lease stays, as for a stopped VM). Starting it restores that state.
//
// The saved state lives in <vm dir>/state: the driver's files and
// state.json (the vmm.State). It is written into state.tmp and renamed
// once complete and synced, so a crash never leaves a partial state that
// looks complete. A restore renames it to state.used before the guest
// runs again: from then on its disks move past the saved memory, which
// must never be loaded again.
const (
	StateDir  = "state"
	stateTmp  = "state.tmp"
	stateUsed = "state.used"
	stateMeta = "state.json"
)

const (
	opPause   op = "pause"
	opResume  op = "resume"
	opSuspend op = "suspend"
)

// snapshotter returns the driver's Snapshotter, or an unsupported error.
func (m *Manager) snapshotter(name string) (vmm.Snapshotter, error) {
	s, ok := m.driver.(vmm.Snapshotter)
	if !ok {
		return nil, errdefs.Unsupported("vm %q: the %s driver cannot pause a vm or save its state; use 'banger vm stop %s'", name, m.driver.Name(), name)
	}
	return s, nil
}

// liveRow returns the row of a VM whose VMM process runs.
func (m *Manager) liveRow(ctx context.Context, name string) (store.VM, error) {
	row, err := m.Row(ctx, name)
	if err != nil {
		return row, err
	}
	if h := row.Handle; h == nil || !vmm.Alive(h.PID, h.StartTime) {
		return row, errdefs.Conflict("vm %q is %s; start it with 'banger vm start %s'", name, notRunning(row.State), name)
	}
	return row, nil
}

// notRunning names the state of a VM without a process for an error.
func notRunning(s api.VMState) api.VMState {
	if s == api.VMRunning || s == api.VMPaused {
		return api.VMStopped
	}
	return s
}

func (m *Manager) setPaused(name string, paused bool) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if r := m.live[name]; r != nil {
		r.paused = paused
		// A paused guest cannot answer pings; its connection, and every
		// session attached through it, must outlive the pause.
		if r.agent != nil {
			r.agent.HoldKeepAlive(paused)
		}
	}
}

// PauseVM freezes a running VM's vCPUs. Pausing a paused VM is no error.
func (m *Manager) PauseVM(ctx context.Context, name string) (api.VM, error) {
	release, err := m.claim(name, opPause)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	snap, err := m.snapshotter(name)
	if err != nil {
		return api.VM{}, err
	}
	row, err := m.liveRow(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	switch row.State {
	case api.VMPaused:
		return m.VM(ctx, name)
	case api.VMRunning:
	default:
		return api.VM{}, errdefs.Conflict("vm %q is %s; only a running vm can be paused", name, row.State)
	}
	m.setPaused(name, true)
	if err := snap.Pause(ctx, row.Handle); err != nil {
		m.setPaused(name, false)
		return api.VM{}, fmt.Errorf("pausing vm %q: %w", name, err)
	}
	row.State = api.VMPaused
	if err := m.saveVM(row); err != nil {
		snap.Resume(context.Background(), row.Handle)
		m.setPaused(name, false)
		return api.VM{}, err
	}
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" paused (resume it with 'banger vm resume "+name+"')")
	return m.VM(ctx, name)
}

// ResumeVM thaws a paused VM. Resuming a running VM is no error.
func (m *Manager) ResumeVM(ctx context.Context, name string) (api.VM, error) {
	release, err := m.claim(name, opResume)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	snap, err := m.snapshotter(name)
	if err != nil {
		return api.VM{}, err
	}
	row, err := m.Row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	if row.State == api.VMSuspended {
		return api.VM{}, errdefs.Conflict("vm %q is suspended to disk; start it with 'banger vm start %s'", name, name)
	}
	if row, err = m.liveRow(ctx, name); err != nil {
		return api.VM{}, err
	}
	switch row.State {
	case api.VMRunning:
		return m.VM(ctx, name)
	case api.VMPaused:
	default:
		return api.VM{}, errdefs.Conflict("vm %q is %s; only a paused vm can be resumed", name, row.State)
	}
	if err := snap.Resume(ctx, row.Handle); err != nil {
		return api.VM{}, fmt.Errorf("resuming vm %q: %w", name, err)
	}
	m.setPaused(name, false)
	row.State = api.VMRunning
	if err := m.saveVM(row); err != nil {
		return api.VM{}, err
	}
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" resumed")
	return m.VM(ctx, name)
}

// SuspendVM saves a running or paused VM's memory and device state into
// its directory and ends its VMM process; 'vm start' restores it. On
// failure the VM is left as it was (running or paused) and no state is
// kept.
func (m *Manager) SuspendVM(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	release, err := m.claim(name, opSuspend)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	snap, err := m.snapshotter(name)
	if err != nil {
		return api.VM{}, err
	}
	row, err := m.Row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	if row.State == api.VMSuspended {
		return m.VM(ctx, name)
	}
	if row, err = m.liveRow(ctx, name); err != nil {
		return api.VM{}, err
	}
	if row.State != api.VMRunning && row.State != api.VMPaused {
		return api.VM{}, errdefs.Conflict("vm %q is %s; only a running or paused vm can be suspended", name, row.State)
	}
	h, was := row.Handle, row.State
	// undo puts the VM back as it was: its state discarded, running again
	// unless it was paused.
	undo := func(cause error) (api.VM, error) {
		os.RemoveAll(filepath.Join(row.Dir, stateTmp))
		os.RemoveAll(filepath.Join(row.Dir, StateDir))
		if was == api.VMRunning {
			if err := snap.Resume(context.Background(), h); err != nil {
				m.log.Warn("resuming vm after a failed suspend", "vm", name, "err", err)
				was = api.VMPaused
			}
		}
		m.setPaused(name, was == api.VMPaused)
		row.State = was
		m.saveVM(row)
		return api.VM{}, fmt.Errorf("suspending vm %q: %w; it is %s as before", name, cause, was)
	}
	if was == api.VMRunning {
		// The guest's unwritten file data would live only in the saved
		// memory: flush it, so that a cold start (the user's choice when
		// a state cannot be restored) loses none of what was written.
		p.Step("sync", "flushing the guest's file writes to its disks")
		m.syncGuest(ctx, name, h)
	}
	row.State = api.VMSuspending
	if err := m.saveVM(row); err != nil {
		return api.VM{}, err
	}
	m.setPaused(name, true)
	if was == api.VMRunning {
		p.Step("pause", "pausing "+name)
		if err := snap.Pause(ctx, h); err != nil {
			return undo(fmt.Errorf("pausing: %w", err))
		}
	}
	p.Step("save", fmt.Sprintf("saving the memory of %s (%d MiB) to disk", name, row.MemoryMiB))
	if _, err := m.saveState(ctx, snap, row, h); err != nil {
		return undo(err)
	}
	p.Step("stop", "ending the vm process")
	// The exit is this operation's: no watcher may record it as a stop.
	m.unwatch(name)
	if err := m.driver.Kill(ctx, h); err != nil && vmm.Alive(h.PID, h.StartTime) {
		m.watch(row)
		return undo(fmt.Errorf("ending the vm process %d: %w", h.PID, err))
	}
	wctx, cancel := context.WithTimeout(ctx, m.stopTimeouts.Term)
	vmm.WaitExit(wctx, h)
	cancel()
	if vmm.Alive(h.PID, h.StartTime) {
		if err := vmm.Terminate(ctx, h, m.stopTimeouts.Term); err != nil {
			m.watch(row)
			return undo(fmt.Errorf("ending the vm process %d: %w", h.PID, err))
		}
	}
	m.markSuspended(ctx, row, h)
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" suspended to disk (start it with 'banger vm start "+name+"')")
	return m.VM(ctx, name)
}

// syncGuest asks the guest to write its dirty pages to its disks; a
// guest that does not answer in time is suspended all the same (its
// writes are in the saved memory).
func (m *Manager) syncGuest(ctx context.Context, name string, h *vmm.Handle) {
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	cl, err := m.agentClient(sctx, name, h)
	if err == nil {
		_, err = cl.Output(sctx, []string{"sync"}, nil)
	}
	if err != nil {
		m.log.Warn("syncing the guest before a suspend", "vm", name, "err", err)
	}
}

// syncTimeout bounds the guest's sync before a suspend.
const syncTimeout = 30 * time.Second

// markSuspended records a VM whose state is saved and whose process h is
// gone: it holds no TAP and no process.
func (m *Manager) markSuspended(ctx context.Context, row store.VM, h *vmm.Handle) {
	row.State, row.Handle, row.TAP, row.LastError, row.StoppedAt = api.VMSuspended, nil, "", "", time.Now()
	if err := m.saveVM(row); err != nil {
		m.log.Warn("recording a suspended vm", "vm", row.Name, "err", err)
	}
	if h != nil {
		m.releaseVMM(ctx, row.Name, h)
	}
	if m.net != nil {
		if err := m.net.ReleaseTAP(ctx, row.Name); err != nil {
			m.log.Warn("releasing tap", "vm", row.Name, "err", err)
		}
	}
	m.unwatch(row.Name)
}

// saveState writes the paused VM's state into state.tmp, syncs it and
// renames it to state: only a complete state ever carries that name.
func (m *Manager) saveState(ctx context.Context, snap vmm.Snapshotter, row store.VM, h *vmm.Handle) (vmm.State, error) {
	tmp, final := filepath.Join(row.Dir, stateTmp), filepath.Join(row.Dir, StateDir)
	for _, d := range []string{tmp, final, filepath.Join(row.Dir, stateUsed)} {
		if err := os.RemoveAll(d); err != nil {
			return vmm.State{}, fmt.Errorf("removing an old state: %w", err)
		}
	}
	st, err := writeState(ctx, snap, h, tmp, final)
	if err != nil {
		return vmm.State{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return vmm.State{}, fmt.Errorf("committing the saved state: %w", err)
	}
	if err := fsutil.SyncDir(row.Dir); err != nil {
		return vmm.State{}, fmt.Errorf("syncing the vm directory: %w", err)
	}
	return st, nil
}

// writeState saves the paused VM's state into dir, which it creates,
// with state.json naming its files relative to it, and syncs it. final
// is where the caller renames dir once it is complete.
func writeState(ctx context.Context, snap vmm.Snapshotter, h *vmm.Handle, dir, final string) (vmm.State, error) {
	st, err := saveStateFiles(ctx, snap, h, dir)
	if err != nil {
		return vmm.State{}, err
	}
	st.Dir = final
	b, err := json.Marshal(st)
	if err != nil {
		return vmm.State{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, stateMeta), b, 0o600); err != nil {
		return vmm.State{}, fmt.Errorf("writing the state description: %w", err)
	}
	if err := syncTree(dir); err != nil {
		return vmm.State{}, fmt.Errorf("syncing the saved state: %w", err)
	}
	return st, nil
}

// confineState refuses a state whose files are not in dir and makes
// their names relative to it.
func confineState(st *vmm.State, dir string) error {
	for role, f := range st.Files {
		if !filepath.IsLocal(f) && !strings.HasPrefix(f, dir+string(filepath.Separator)) {
			return fmt.Errorf("the driver saved the vm's %s outside its state directory (%s)", role, f)
		}
		if rel, err := filepath.Rel(dir, f); err == nil && filepath.IsAbs(f) {
			st.Files[role] = rel
		}
	}
	return nil
}

// syncTree fsyncs every file under dir, then dir.
func syncTree(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// readState reads the VM's complete saved state; ok is false when it has
// none.
func readState(row store.VM) (st vmm.State, ok bool, err error) {
	return readStateDir(filepath.Join(row.Dir, StateDir))
}

// readStateDir reads the saved state in dir; ok is false when there is
// none.
func readStateDir(dir string) (st vmm.State, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stateMeta))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return vmm.State{}, false, nil
		}
	}
	if err != nil {
		return vmm.State{}, true, fmt.Errorf("reading the saved state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return vmm.State{}, true, fmt.Errorf("reading the saved state: %w", err)
	}
	for role, f := range st.Files {
		if !filepath.IsLocal(f) {
			return vmm.State{}, true, fmt.Errorf("the saved state names its %s outside its directory (%q)", role, f)
		}
	}
	st.Dir = dir // the directory it is in now, whatever it was written as
	return st, true, nil
}

// hasState reports whether the VM has a saved state (complete or not).
func hasState(row store.VM) bool {
	_, err := os.Stat(filepath.Join(row.Dir, StateDir))
	return err == nil
}

// discardState removes every saved state of the VM.
func discardState(row store.VM) error {
	for _, d := range []string{StateDir, stateTmp, stateUsed} {
		if err := os.RemoveAll(filepath.Join(row.Dir, d)); err != nil {
			return fmt.Errorf("discarding the saved state: %w", err)
		}
	}
	return nil
}

// stateBytes is what the VM's saved state takes on disk.
func stateBytes(dir string) int64 {
	return diskBytes(filepath.Join(dir, StateDir))
}

// diskBytes is what the files under dir take on disk (allocated blocks).
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// restoreChoice is the error of a saved state that cannot be restored:
// it names the user's two choices, as banger never boots over a saved
// state by itself.
func restoreChoice(name string, cause error) error {
	return errdefs.Conflict("vm %q: restoring its saved state failed: %v; the state is kept: 'banger vm start %s' tries again, 'banger vm start --cold %s' discards it (the processes it holds end) and boots fresh", name, cause, name, name)
}

// restoreVM starts a suspended VM from its saved state with a new TAP
// and VMM process and resumes it; the caller holds the claim. When the
// state cannot be loaded the VM stays suspended with its state kept.
func (m *Manager) restoreVM(ctx context.Context, row store.VM, im api.Image, p progress.Func) (err error) {
	snap, serr := m.snapshotter(row.Name)
	if serr != nil {
		return restoreChoice(row.Name, serr)
	}
	st, _, err := readState(row)
	if err != nil {
		return restoreChoice(row.Name, err)
	}
	var undo undoStack
	consumed := false
	defer func() {
		if err == nil {
			return
		}
		undo.run()
		row.Handle, row.TAP, row.LastError = nil, "", lastError(err)
		row.State = api.VMSuspended
		if consumed {
			discardState(row)
			row.State = api.VMError
		}
		m.saveVM(row)
	}()
	if err := os.MkdirAll(row.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("creating runtime dir: %w", err)
	}
	spec, err := m.vmSpec(ctx, &row, im)
	if err != nil {
		return err
	}
	if _, err := m.attachNetwork(ctx, &row, &spec, &undo); err != nil {
		return err
	}
	row.State = api.VMRestoring
	if err := m.saveVM(row); err != nil {
		return err
	}
	p.Step("restore", fmt.Sprintf("restoring %s from its saved state (%s)", row.Name, bytesize.Format(uint64(max(stateBytes(row.Dir), 0)))))
	h, err := snap.Restore(ctx, spec, st)
	if err != nil {
		return restoreChoice(row.Name, err)
	}
	undo.push(func() {
		m.driver.Kill(context.Background(), h)
		m.releaseVMM(context.Background(), row.Name, h)
	})
	row.Handle, row.StartedAt = h, time.Now()
	if err := m.saveVM(row); err != nil {
		return err
	}
	// From here the guest runs on and its disks move past the saved
	// memory: the state must never be loaded again.
	if err := os.Rename(filepath.Join(row.Dir, StateDir), filepath.Join(row.Dir, stateUsed)); err != nil {
		return fmt.Errorf("setting the saved state aside: %w", err)
	}
	consumed = true
	if err := snap.Resume(ctx, h); err != nil {
		// The guest did not run: its state is still good.
		if rerr := os.Rename(filepath.Join(row.Dir, stateUsed), filepath.Join(row.Dir, StateDir)); rerr == nil {
			consumed = false
		}
		return restoreChoice(row.Name, fmt.Errorf("resuming: %w", err))
	}
	p.Step("agent", "reconnecting to the guest agent")
	cl, err := m.waitAgent(ctx, &row, h)
	if err != nil {
		return fmt.Errorf("the restored vm's agent did not answer (its saved state was used and is gone; 'banger vm start %s' boots it fresh): %w", row.Name, err)
	}
	row.State, row.LastError = api.VMRunning, ""
	if err := m.saveVM(row); err != nil {
		cl.Close()
		return err
	}
	m.watch(row)
	if _, err := m.adoptAgent(row.Name, h, cl); err != nil {
		return err
	}
	m.afterRestore(ctx, row.Name, cl)
	if err := os.RemoveAll(filepath.Join(row.Dir, stateUsed)); err != nil {
		m.log.Warn("removing a used state", "vm", row.Name, "err", err)
	}
	return nil
}

// afterRestore gives a guest resumed from a saved state the host's time
// (its clock stood still while it was saved) and fresh entropy. Both are
// best effort: an agent from an older banger cannot, and says so in the
// log.
func (m *Manager) afterRestore(ctx context.Context, name string, cl *agentproto.Client) {
	if res, err := cl.SetClock(ctx, time.Now()); err != nil {
		m.log.Warn("setting a restored guest's clock", "vm", name, "err", err)
	} else {
		m.log.Info("restored guest's clock set", "vm", name, "moved", res.Moved)
	}
	if _, err := cl.Reseed(ctx, nil); err != nil {
		m.log.Warn("reseeding a restored guest's entropy pool", "vm", name, "err", err)
	}
}

// reconcileSnapshot settles, at daemon start, a VM a crash caught
// suspending or restoring, and checks a suspended VM's state; it reports
// whether it handled the VM.
func (m *Manager) reconcileSnapshot(ctx context.Context, r store.VM) bool {
	os.RemoveAll(filepath.Join(r.Dir, stateTmp)) // never complete
	_, complete, serr := readState(r)
	complete = complete && serr == nil
	h := r.Handle
	switch r.State {
	case api.VMSuspending:
		if complete {
			// The save finished: finish the suspend.
			if _, err := m.endVMProcess(ctx, r, h, "of an interrupted suspend"); err != nil {
				return true
			}
			m.markSuspended(ctx, r, h)
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being suspended when the daemon stopped; its state was saved: it is suspended")
			return true
		}
		discardState(r)
		if snap, ok := m.driver.(vmm.Snapshotter); ok && h != nil && m.driver.Adopt(ctx, h) == nil && snap.Resume(ctx, h) == nil {
			r.State = api.VMRunning
			m.saveVM(r)
			m.watch(r)
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being suspended when the daemon stopped, before its state was saved; it runs on")
			return true
		}
		if _, err := m.endVMProcess(ctx, r, h, "of an interrupted suspend"); err != nil {
			return true
		}
		m.settleStopped(ctx, r, h, "the daemon stopped while the vm was being suspended, before its state was saved; start it again")
		m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being suspended when the daemon stopped, before its state was saved; it is stopped")
		return true
	case api.VMRestoring:
		if _, err := m.endVMProcess(ctx, r, h, "of an interrupted restore"); err != nil {
			return true
		}
		if complete {
			// The guest never ran from it: the state is still good.
			m.markSuspended(ctx, r, h)
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being restored when the daemon stopped; it is stopped with its saved state kept (start it again with 'banger vm start "+r.Name+"')")
			return true
		}
		discardState(r)
		m.settleStopped(ctx, r, h, "the daemon stopped while the vm was being restored, after its guest ran on from its saved state; the state was discarded")
		m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was being restored when the daemon stopped, after its guest had run on; it is stopped and its saved state discarded (its disks had moved past it)")
		return true
	case api.VMSuspended:
		if !complete {
			r.State, r.LastError = api.VMStopped, "its saved state is missing or unreadable; it boots fresh"
			discardState(r)
			m.saveVM(r)
			m.events.Event(ctx, "warn", "vm/"+r.Name, "vm "+r.Name+" was suspended but its saved state is missing or unreadable; it is stopped")
		}
		return true
	}
	os.RemoveAll(filepath.Join(r.Dir, stateUsed))
	return false
}

// settleStopped records a VM without a process as stopped, with why.
func (m *Manager) settleStopped(ctx context.Context, r store.VM, h *vmm.Handle, why string) {
	if h != nil && m.markStopped(r.Name, h, why) {
		return
	}
	r.State, r.Handle, r.TAP, r.LastError, r.StoppedAt = api.VMStopped, nil, "", why, time.Now()
	m.saveVM(r)
	if m.net != nil {
		m.net.ReleaseTAP(ctx, r.Name)
	}
}
