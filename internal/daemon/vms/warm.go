package vms

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/bytesize"
	"banger/internal/disk"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// WarmSource is a saved state a new VM starts from instead of booting:
// a template's, or a running VM's for a fork. Its files are only read.
type WarmSource struct {
	// State is the saved memory and device state.
	State vmm.State
	// Disks are the disk files saved with State, by file name in a VM
	// directory (RootfsFile, WorkFile); they are copied (reflink, else
	// sparse) into the new VM's directory.
	Disks map[string]string
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
	if m.net == nil {
		return errdefs.Unsupported("vm %q: a restored vm needs banger's network to be given its own address; create it with --cold", row.Name)
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
			row.State, row.Handle, row.TAP, row.LastError = api.VMError, nil, "", lastError(err)
			m.saveVM(*row)
		}
	}()
	for _, f := range []string{RootfsFile, WorkFile} {
		from, ok := src.Disks[f]
		if !ok {
			return fmt.Errorf("the saved state has no %s", f)
		}
		total, err := disk.DataSize(from)
		if err != nil {
			return fmt.Errorf("sizing %s: %w", f, err)
		}
		c := progress.NewCounter(p, "disk", f, total)
		if _, err := disk.Copy(ctx, from, filepath.Join(row.Dir, f), disk.WithProgress(c)); err != nil {
			return err
		}
		c.Done()
	}
	if err := os.MkdirAll(row.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("creating runtime dir: %w", err)
	}
	spec, err := m.vmSpec(ctx, row, im)
	if err != nil {
		return err
	}
	addr, err := m.attachNetwork(ctx, row, &spec, &undo)
	if err != nil {
		return err
	}
	p.Step("restore", fmt.Sprintf("restoring %s from a saved state (%s)", row.Name, bytesize.Format(uint64(max(src.State.Bytes, 0)))))
	h, err := snap.Restore(ctx, spec, src.State)
	if err != nil {
		return &restoreError{err}
	}
	undo.push(func() {
		m.driver.Kill(context.Background(), h)
		m.releaseVMM(context.Background(), row.Name, h)
	})
	row.Handle, row.LastError, row.StartedAt = h, "", time.Now()
	if err := m.saveVM(*row); err != nil {
		return err
	}
	if err := snap.Resume(ctx, h); err != nil {
		return fmt.Errorf("resuming the restored vm: %w", err)
	}
	p.Step("agent", "reaching the guest agent")
	cl, err := m.waitAgent(ctx, row, h)
	if err != nil {
		return err
	}
	undo.push(func() { cl.Close() })
	p.Step("identity", "giving "+row.Name+" its own identity")
	keys, err := m.reidentify(ctx, row, cl, addr, spec.Net.MAC)
	if err != nil {
		return err
	}
	if m.onBoot != nil {
		m.onBoot(ctx, row.Name, cl)
	}
	if keys != nil {
		if len(keys.Keys) == 0 {
			return fmt.Errorf("the restored guest reported no new ssh host key")
		}
		row.HostKey = keys.Keys[0]
		if err := m.hosts.Pin(row.Name, addr.String(), keys.Keys); err != nil {
			return err
		}
		p.Step("ssh", "waiting for ssh")
		if err := m.waitSSH(ctx, row, cl); err != nil {
			return err
		}
	}
	row.State = api.VMRunning
	if err := m.saveVM(*row); err != nil {
		return err
	}
	m.watch(*row)
	if _, err := m.adoptAgent(row.Name, h, cl); err != nil {
		return err
	}
	return nil
}

// reidentify gives a restored guest the host's time, fresh entropy and
// its own identity, in that order (the new host keys and machine-id are
// drawn from the reseeded pool). It returns the host keys to pin, nil
// when the guest runs no SSH server. The clock is best effort (an old
// guest's clock is only wrong); entropy and identity are not: a guest
// that shares them with its siblings must not run.
func (m *Manager) reidentify(ctx context.Context, row *store.VM, cl *agentproto.Client, addr netip.Addr, mac string) (*agentproto.HostKeys, error) {
	if _, err := cl.SetClock(ctx, time.Now()); err != nil {
		m.log.Warn("setting a restored guest's clock", "vm", row.Name, "err", err)
	}
	if _, err := cl.Reseed(ctx, nil); err != nil {
		return nil, err
	}
	req := agentproto.ReidentifyRequest{
		Hostname: row.Name, MAC: mac,
		Addr:    netip.PrefixFrom(addr, m.cfg.CIDR.Bits()).String(),
		Gateway: m.cfg.BridgeIP.String(),
	}
	for _, d := range m.cfg.DefaultDNS {
		req.DNS = append(req.DNS, d.String())
	}
	res, err := cl.Reidentify(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.Hostname != row.Name || res.Addr != req.Addr {
		return nil, fmt.Errorf("the restored guest took identity %q %q, not %s %s", res.Hostname, res.Addr, row.Name, req.Addr)
	}
	info, err := cl.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the guest agent for its info: %w", err)
	}
	if info.SSH == "off" {
		return nil, nil
	}
	return &res.HostKeys, nil
}
