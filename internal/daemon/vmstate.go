package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"banger/internal/agent"
	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// running is what the daemon holds for a live VM besides its row.
type running struct {
	handle *vmm.Handle
	agent  *agent.Client
	cancel context.CancelFunc // stops the exit watcher
}

func (d *Daemon) setAgent(name string, cl *agent.Client) {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	r := d.run[name]
	if r == nil {
		r = &running{}
		d.run[name] = r
	}
	if r.agent != nil && r.agent != cl {
		r.agent.Close()
	}
	r.agent = cl
}

// Agent returns a connected agent client for a running VM, reconnecting
// when the cached connection has dropped.
func (d *Daemon) Agent(ctx context.Context, name string) (*agent.Client, error) {
	row, err := d.vmRow(ctx, &d.store.Reader, name)
	if err != nil {
		return nil, err
	}
	h := row.Handle
	if h == nil || row.State != api.VMRunning {
		return nil, errdefs.Conflict("vm %q is %s; start it with 'banger vm start %s'", name, row.State, name)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := d.agentClient(cctx, name, h)
	if err != nil {
		return nil, errdefs.Unavailable("vm %q: cannot reach the guest agent: %w", name, err)
	}
	return cl, nil
}

// agentClient returns the VM's live agent connection, connecting first
// when there is none (as after a daemon restart re-adopted the VM).
func (d *Daemon) agentClient(ctx context.Context, name string, h *vmm.Handle) (*agent.Client, error) {
	d.runMu.Lock()
	if r := d.run[name]; r != nil && r.agent != nil {
		select {
		case <-r.agent.Done():
		default:
			cl := r.agent
			d.runMu.Unlock()
			return cl, nil
		}
	}
	d.runMu.Unlock()
	cl, err := agent.Connect(ctx, func(ctx context.Context) (net.Conn, error) { return d.driver.DialAgent(ctx, h) })
	if err != nil {
		return nil, err
	}
	d.setAgent(name, cl)
	return cl, nil
}

// watch marks the VM stopped when its VMM process exits, however that
// happens (guest poweroff, crash, kill -9).
func (d *Daemon) watch(row store.VM, h *vmm.Handle) {
	ctx, cancel := context.WithCancel(d.life)
	d.runMu.Lock()
	r := d.run[row.Name]
	if r == nil {
		r = &running{}
		d.run[row.Name] = r
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.handle, r.cancel = h, cancel
	d.runMu.Unlock()
	go func() {
		if err := vmm.WaitExit(ctx, h); err != nil {
			return // the daemon is stopping, or the watch was cancelled
		}
		// An exit during a stop or delete is that operation's doing: it
		// records the stop itself. Ask before marking: once the row is
		// stopped the operation may finish and release its claim.
		expected := d.stopping(row.Name)
		if d.markStopped(row.Name, h, "") && !expected {
			d.event(context.Background(), "warn", "vm/"+row.Name, "vm "+row.Name+" stopped on its own (see 'banger vm logs "+row.Name+"')")
		}
	}()
}

// stopping reports whether a stop or delete of the VM is in progress.
func (d *Daemon) stopping(name string) bool {
	d.busyMu.Lock()
	defer d.busyMu.Unlock()
	op := d.busy["vm/"+name]
	return op == "stop" || op == "delete"
}

func (d *Daemon) unwatch(name string) {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	if r := d.run[name]; r != nil {
		if r.cancel != nil {
			r.cancel()
		}
		if r.agent != nil {
			r.agent.Close()
		}
		delete(d.run, name)
	}
}

// markStopped records that h's process is gone: the row is stopped and
// its TAP released. It reports false when the row had already moved on
// (another handle, or deleted).
func (d *Daemon) markStopped(name string, h *vmm.Handle, lastErr string) bool {
	ctx := context.Background()
	changed := false
	err := d.store.Tx(ctx, func(tx *store.Tx) error {
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
		d.log.Warn("marking vm stopped", "vm", name, "err", err)
	}
	if changed {
		d.releaseVMM(ctx, name, h)
		if d.net != nil {
			if err := d.net.ReleaseTAP(ctx, name); err != nil {
				d.log.Warn("releasing tap", "vm", name, "err", err)
			}
		}
		d.unwatch(name)
	}
	return changed
}

// StartVM boots a stopped VM with its existing disks.
func (d *Daemon) StartVM(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	release, err := d.claim("vm/"+name, "start")
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	row, err := d.vmRow(ctx, &d.store.Reader, name)
	if err != nil {
		return api.VM{}, err
	}
	if h := row.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		return api.VM{}, errdefs.Conflict("vm %q is already running", name)
	}
	im, err := d.imageFor(ctx, row.Image)
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.VM{}, errdefs.Conflict("vm %q boots the kernel of image %q, which was deleted; register an image of that name again ('banger image register --name %s ...'), or delete the vm", name, row.Image, row.Image)
	}
	if err != nil {
		return api.VM{}, err
	}
	if err := d.boot(ctx, &row, im, p); err != nil {
		return api.VM{}, err
	}
	d.event(ctx, "info", "vm/"+name, "vm "+name+" started")
	return d.VM(ctx, name)
}

// StopVM shuts a VM down gracefully: the guest agent first, then the
// VMM's power button, then signals, each with a timeout.
func (d *Daemon) StopVM(ctx context.Context, name string) (api.VM, error) {
	release, err := d.claim("vm/"+name, "stop")
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	row, err := d.vmRow(ctx, &d.store.Reader, name)
	if err != nil {
		return api.VM{}, err
	}
	h := row.Handle
	if h == nil || !vmm.Alive(h.PID, h.StartTime) {
		if h != nil {
			d.markStopped(name, h, "")
		}
		return d.VM(ctx, name)
	}
	if err := d.shutdown(ctx, &row, h); err != nil {
		return api.VM{}, err
	}
	d.event(ctx, "info", "vm/"+name, "vm "+name+" stopped")
	return d.VM(ctx, name)
}

// shutdown escalates until h's process is gone, then records the stop.
func (d *Daemon) shutdown(ctx context.Context, row *store.VM, h *vmm.Handle) error {
	t := d.stopTimeouts
	row.State = api.VMStopping
	d.saveVM(*row)
	// The guest first: it syncs and unmounts its disks. After a daemon
	// restart there is no connection yet, so make one (within the same
	// budget); an agent that is PID 1 has no other way to hear of it.
	actx, cancel := context.WithTimeout(ctx, t.Agent)
	if cl, err := d.agentClient(actx, row.Name, h); err == nil {
		if err := cl.Shutdown(actx, false); err == nil {
			vmm.WaitExit(actx, h)
		}
	} else {
		d.log.Warn("stopping vm without its agent", "vm", row.Name, "err", err)
	}
	cancel()
	if vmm.Alive(h.PID, h.StartTime) {
		vctx, cancel := context.WithTimeout(ctx, t.VMM)
		if err := d.driver.Stop(vctx, h); err == nil {
			d.driver.Wait(vctx, h)
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
	if !d.markStopped(row.Name, h, "") {
		d.releaseVMM(ctx, row.Name, h)
	}
	return nil
}

// releaseVMM lets a driver remove what an exited VMM left on the host.
func (d *Daemon) releaseVMM(ctx context.Context, name string, h *vmm.Handle) {
	rel, ok := d.driver.(vmm.Releaser)
	if !ok || vmm.Alive(h.PID, h.StartTime) {
		return
	}
	if err := rel.Release(ctx, h); err != nil {
		d.log.Warn("releasing vm files", "vm", name, "err", err)
	}
}

// RestartVM stops and starts a VM.
func (d *Daemon) RestartVM(ctx context.Context, name string, p progress.Func) (api.VM, error) {
	if _, err := d.StopVM(ctx, name); err != nil {
		return api.VM{}, err
	}
	return d.StartVM(ctx, name, p)
}
