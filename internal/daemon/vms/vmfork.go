package vms

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/image"
	"banger/internal/network"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Fork (docs/vms.md, "Fork"; docs/snapshots.md, "Forks"). A fork is a new
// VM restored from its parent's memory and device state onto copies of
// its parent's disks, then given its own identity before it may use the
// network.
//
// A running parent is paused only while its state is saved and its disks
// are copied; the state goes into the fork's directory (forkState) and is
// removed once the fork runs. A suspended parent's saved state is restored
// as it is: restores map its memory privately and never write it.
//
// The fork is restored with its network link down where the driver can
// (vmm.LinkSetter): resumed, its guest still has its parent's MAC and
// address, and the agent's reidentify (after set_clock and reseed) gives
// it its own before the link comes up. Its row is "creating" until it
// runs, so a daemon that dies meanwhile removes it at its next start, as
// it does a half-made create; the parent is paused and resumed by
// saveLive (vmsave.go), whose marker makes the next start resume it.
const (
	opFork    op = "fork"
	forkState    = "fork.state"
)

// ForkVM makes a twin of the running, paused or suspended VM src named
// req.Name. On failure nothing of the fork is left (row, disks, lease,
// TAP, VMM process, pinned key) and src is as it was.
func (m *Manager) ForkVM(ctx context.Context, src string, req api.ForkVMRequest, p progress.Func) (vm api.VM, err error) {
	if err := image.ValidateName("vm", req.Name); err != nil {
		return api.VM{}, err
	}
	if req.Name == src {
		return api.VM{}, errdefs.Invalid("a fork needs a name of its own; pass --name with a name other than %q", src)
	}
	snap, err := m.snapshotter(src)
	if err != nil {
		return api.VM{}, err
	}
	if m.net == nil {
		return api.VM{}, errdefs.Unsupported("vm %q: a fork needs banger's network to get an address of its own; run 'sudo banger system setup'", src)
	}
	releaseSrc, err := m.claim(src, opFork)
	if err != nil {
		return api.VM{}, err
	}
	defer releaseSrc()
	releaseNew, err := m.claim(req.Name, opCreate)
	if err != nil {
		return api.VM{}, err
	}
	defer releaseNew()
	parent, err := m.Row(ctx, src)
	if err != nil {
		return api.VM{}, err
	}
	switch parent.State {
	case api.VMRunning, api.VMPaused:
		if parent, err = m.liveRow(ctx, src); err != nil {
			return api.VM{}, err
		}
	case api.VMSuspended:
	default:
		return api.VM{}, errdefs.Conflict("vm %q is %s; only a running, paused or suspended vm can be forked (start it with 'banger vm start %s')", src, parent.State, src)
	}
	im, err := m.images.Bootable(ctx, parent.Image)
	if err != nil {
		return api.VM{}, fmt.Errorf("vm %q: its image: %w", src, err)
	}
	row := m.forkRow(parent, req.Name)
	err = m.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.VM(ctx, row.Name); err == nil {
			return errdefs.Conflict("vm %q already exists; pick another --name or delete it with 'banger vm delete %s'", row.Name, row.Name)
		}
		if err := tx.PutVM(ctx, row); err != nil {
			return err
		}
		// The twin keeps its parent's egress policy.
		if policy, ok, err := tx.VMNetwork(ctx, parent.Name); err != nil {
			return err
		} else if ok {
			return tx.PutVMNetwork(ctx, row.Name, policy)
		}
		return nil
	})
	if err != nil {
		return api.VM{}, err
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
			err = fmt.Errorf("forking vm %q as %q: %w; nothing of %s was kept", src, row.Name, err, row.Name)
		}
	}()
	undo.push(func() { m.forgetVM(row) })
	if err := os.MkdirAll(row.Dir, 0o700); err != nil {
		return api.VM{}, fmt.Errorf("creating vm directory: %w", err)
	}
	st, err := m.forkMaterial(ctx, snap, parent, row.Dir, p)
	if err != nil {
		return api.VM{}, err
	}
	// Read after the save: the twin holds what its parent had received.
	received, err := m.Credentials(ctx, parent.Name)
	if err == nil {
		err = m.inheritCredentials(ctx, row.Name, received)
	}
	if err != nil {
		return api.VM{}, err
	}
	if err := m.restoreNew(ctx, snap, &row, im, st, &undo, p); err != nil {
		return api.VM{}, err
	}
	undo.clear()
	m.events.Event(ctx, "info", "vm/"+row.Name, "vm "+row.Name+" forked from "+src+" and running")
	return m.VM(ctx, row.Name)
}

// forkRow is the fork's row: its parent's sizes and image, its own name,
// id and directories.
func (m *Manager) forkRow(parent store.VM, name string) store.VM {
	id := fsutil.RandomHex()
	return store.VM{VM: api.VM{
		ID: id, Name: name, Image: parent.Image, State: api.VMCreating, VMM: m.driver.Name(),
		CPUs: parent.CPUs, MemoryMiB: parent.MemoryMiB, DiskBytes: parent.DiskBytes,
		AuthSync:   parent.AuthSync, // the twin holds what its parent received
		Dir:        filepath.Join(m.layout.VMsDir, id),
		RuntimeDir: filepath.Join(m.layout.RuntimeDir, "vm", id),
		CreatedAt:  time.Now(),
	}}
}

// forkMaterial copies the parent's disks into dir and returns the state
// the fork restores: a suspended parent's own, or, for a live parent, one
// saved into dir while it is paused with its disks copied at the same
// instant. A parent that was running runs again whatever happens.
func (m *Manager) forkMaterial(ctx context.Context, snap vmm.Snapshotter, parent store.VM, dir string, p progress.Func) (st vmm.State, err error) {
	if parent.State == api.VMSuspended {
		st, ok, err := readState(parent)
		if err == nil && !ok {
			err = fmt.Errorf("its saved state is missing")
		}
		if err != nil {
			return vmm.State{}, fmt.Errorf("vm %q: %w", parent.Name, err)
		}
		return st, copyDisks(ctx, parent.Dir, dir, p)
	}
	return m.saveLive(ctx, snap, parent, liveSave{StateDir: filepath.Join(dir, forkState), DiskDir: dir}, p)
}

// copyDisks copies a VM's private disks from src to dst: reflinks where
// the filesystem has them, else sparse copies.
func copyDisks(ctx context.Context, src, dst string, p progress.Func) error {
	for _, name := range []string{RootfsFile, WorkFile} {
		from := filepath.Join(src, name)
		total, err := disk.DataSize(from)
		if err != nil {
			return fmt.Errorf("sizing %s: %w", name, err)
		}
		c := progress.NewCounter(p, "disk", name, total)
		how, err := disk.Copy(ctx, from, filepath.Join(dst, name), disk.WithProgress(c))
		if err != nil {
			return fmt.Errorf("copying the disks: %w", err)
		}
		c.Done()
		p.Step("disk", fmt.Sprintf("%s copied (%s)", name, how))
	}
	return nil
}

// restoreNew starts a new VM (a fork, or a warm create from a template)
// from st with its own TAP and address, gives it its identity with its
// link down, pins its new host keys and marks it running. Every step it
// takes is pushed on undo.
func (m *Manager) restoreNew(ctx context.Context, snap vmm.Snapshotter, row *store.VM, im api.Image, st vmm.State, undo *undoStack, p progress.Func) error {
	if err := os.MkdirAll(row.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("creating runtime dir: %w", err)
	}
	spec, err := m.vmSpec(ctx, row, im)
	if err != nil {
		return err
	}
	addr, err := m.attachNetwork(ctx, row, &spec, undo)
	if err != nil {
		return err
	}
	id, err := m.forkIdentity(row.Name, addr, spec.Net.MAC)
	if err != nil {
		return err
	}
	// Its egress rules came with its TAP (Network.AcquireTAP), before
	// the guest runs.
	p.Step("restore", fmt.Sprintf("restoring %s from the saved state", row.Name))
	h, err := snap.Restore(ctx, spec, st)
	if err != nil {
		return &restoreError{err}
	}
	undo.push(func() {
		m.driver.Kill(context.Background(), h)
		m.releaseVMM(context.Background(), row.Name, h)
	})
	row.Handle, row.StartedAt = h, time.Now()
	if err := m.saveVM(*row); err != nil {
		return err
	}
	link, _ := m.driver.(vmm.LinkSetter)
	if link != nil {
		if err := link.SetLink(ctx, h, false); err != nil {
			return err
		}
	}
	if err := snap.Resume(ctx, h); err != nil {
		return fmt.Errorf("resuming the fork: %w", err)
	}
	p.Step("agent", "reconnecting to the guest agent")
	cl, err := m.waitAgent(ctx, row, h)
	if err != nil {
		return err
	}
	undo.push(func() { cl.Close() })
	p.Step("identity", fmt.Sprintf("giving %s its own identity (%s, %s)", row.Name, addr, spec.Net.MAC))
	if err := m.reidentify(ctx, row, cl, id); err != nil {
		return err
	}
	if link != nil {
		if err := link.SetLink(ctx, h, true); err != nil {
			return err
		}
	}
	info, err := cl.Info(ctx)
	if err != nil {
		return fmt.Errorf("asking the guest agent for its info: %w", err)
	}
	// sshd reloads its new host keys while the boot hook runs.
	var ssh sync.WaitGroup
	var sshErr error
	if info.SSH != "off" {
		p.Step("ssh", "waiting for ssh")
		ssh.Go(func() { sshErr = m.waitSSH(ctx, row, cl) })
	}
	if m.onBoot != nil {
		m.onBoot(ctx, row.Name, cl)
	}
	ssh.Wait()
	if sshErr != nil {
		return sshErr
	}
	if err := os.RemoveAll(filepath.Join(row.Dir, forkState)); err != nil {
		return fmt.Errorf("removing the fork's copy of the state: %w", err)
	}
	row.State, row.LastError = api.VMRunning, ""
	if err := m.saveVM(*row); err != nil {
		return err
	}
	m.watch(*row)
	if _, err := m.adoptAgent(row.Name, h, cl); err != nil {
		return err
	}
	return nil
}

// forkIdentity is the fork's reidentify request: its name, MAC and
// address, and the gateway and resolvers the kernel command line gives a
// booted VM.
func (m *Manager) forkIdentity(name string, addr netip.Addr, mac string) (agentproto.ReidentifyRequest, error) {
	req := agentproto.ReidentifyRequest{Hostname: name, MAC: mac}
	for _, a := range m.net.KernelArgs(addr) {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case network.ArgIP:
			req.Addr = v
		case network.ArgGW:
			req.Gateway = v
		case network.ArgDNS:
			req.DNS = strings.Split(v, ",")
		}
	}
	if req.Addr == "" {
		req.Addr = netip.PrefixFrom(addr, addr.BitLen()).String()
	}
	if _, err := req.Parse(); err != nil {
		return req, fmt.Errorf("the fork's identity: %w", err)
	}
	return req, nil
}

// reidentify corrects the restored guest's clock, reseeds its random pool
// (its siblings share it until then) and gives it its own identity, then
// pins the host keys it made, as a boot pins a new guest's keys. The
// clock is best effort; the other two are not: a fork that shares its
// parent's random stream or keys is refused.
func (m *Manager) reidentify(ctx context.Context, row *store.VM, cl *agentproto.Client, id agentproto.ReidentifyRequest) error {
	// The clock and the reseed are independent calls: one round trip to
	// a guest that has just woken up, not two.
	var clock sync.WaitGroup
	clock.Go(func() {
		if res, err := cl.SetClock(ctx, time.Now()); err != nil {
			m.log.Warn("setting a fork's clock", "vm", row.Name, "err", err)
		} else {
			m.log.Info("fork's clock set", "vm", row.Name, "moved", res.Moved)
		}
	})
	_, err := cl.Reseed(ctx, nil)
	clock.Wait()
	if err != nil {
		return err
	}
	res, err := cl.Reidentify(ctx, id)
	if err != nil {
		return err
	}
	m.log.Info("fork reidentified", "vm", row.Name, "machine_id", res.MachineID)
	if len(res.HostKeys.Keys) > 0 {
		// The keys the guest made, as it reported them.
		return m.pinKeys(ctx, row, res.HostKeys.Keys)
	}
	return nil
}
