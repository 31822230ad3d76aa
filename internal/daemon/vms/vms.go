package vms

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/fsutil"
	"banger/internal/image"
	"banger/internal/network"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// VM sizes when a create request leaves them out.
const (
	defaultCPUs      = 2
	defaultMemoryMiB = 1024
	defaultDiskBytes = 8 << 30
)

// VMs lists every VM. It only reads: one query for the rows, one for
// the addresses.
func (m *Manager) VMs(ctx context.Context) ([]api.VM, error) {
	rows, err := m.store.VMs(ctx)
	if err != nil {
		return nil, err
	}
	var addrs map[string]netip.Addr
	if m.net != nil {
		if addrs, err = m.net.Addrs(ctx); err != nil {
			return nil, err
		}
	}
	pols, err := m.store.VMNetworks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.VM, 0, len(rows))
	for _, r := range rows {
		v := toAPI(r, addrs[r.Name])
		p, ok := pols[r.Name]
		v.Network = m.shownPolicy(p, ok)
		out = append(out, v)
	}
	return out, nil
}

// VM returns one VM.
func (m *Manager) VM(ctx context.Context, name string) (api.VM, error) {
	r, err := m.Row(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	var addr netip.Addr
	if m.net != nil {
		addr, _ = m.net.Addr(ctx, name)
	}
	v := toAPI(r, addr)
	v.Network = m.networkOf(ctx, name)
	return v, nil
}

// toAPI is the row with what is derived from its handle and address.
func toAPI(r store.VM, addr netip.Addr) api.VM {
	v := r.VM
	if h := r.Handle; h != nil {
		v.PID, v.Accel = h.PID, h.Accel
	}
	if addr.IsValid() {
		v.IP, v.MAC = addr.String(), network.MAC(addr).String()
	}
	if v.State == api.VMSuspended {
		v.StateBytes = stateBytes(r.Dir)
	}
	return v
}

// CreateVM makes a VM from an image and boots it, returning once the
// guest agent answers. Each step is undone if a later one fails: no disk,
// lease, TAP, process or row is left behind.
func (m *Manager) CreateVM(ctx context.Context, req api.CreateVMRequest, p progress.Func) (api.VM, error) {
	useDefault := req.Image == ""
	if useDefault {
		req.Image = m.cfg.DefaultImageName
	}
	if err := image.ValidateName("vm", req.Name); err != nil {
		return api.VM{}, err
	}
	release, err := m.claim(req.Name, opCreate)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	if useDefault {
		if _, err := m.images.Image(ctx, req.Image); errors.Is(err, errdefs.ErrNotFound) {
			if _, err := m.images.EnsureDefault(ctx, req.Image, p); err != nil {
				return api.VM{}, err
			}
		}
	}
	if t, ok, err := m.warmTemplate(ctx, &req); err != nil {
		return api.VM{}, err
	} else if ok {
		return m.createWarm(ctx, req, t, p)
	}
	im, err := m.images.Bootable(ctx, req.Image)
	if err != nil {
		return api.VM{}, err
	}
	vm, err := m.createVM(ctx, req, im, p, false)
	if err == nil && req.Image == m.cfg.DefaultImageName {
		m.autoTemplate(ctx, vm, p)
	}
	return vm, err
}

// createVM makes and boots a VM from im; the caller holds the VM's claim.
func (m *Manager) createVM(ctx context.Context, req api.CreateVMRequest, im api.Image, p progress.Func, builder bool) (api.VM, error) {
	var undo undoStack
	defer undo.run()
	row, authNote, err := m.insertVM(ctx, req, im, builder, &undo)
	if err != nil {
		return api.VM{}, err
	}
	p.Step("create", fmt.Sprintf("creating vm %s from image %s", row.Name, im.Name))
	if authNote != "" {
		p.Step("auth", authNote)
	}
	key, err := m.authorizedKey()
	if err != nil {
		return api.VM{}, err
	}
	if _, err := m.provisionDisks(ctx, im, row.Dir, row.DiskBytes, key, p); err != nil {
		return api.VM{}, err
	}
	if m.net != nil {
		// The guest's egress rules are put in place with its TAP, before
		// it first runs (Network.AcquireTAP).
		if _, _, err := m.net.Allocate(ctx, row.Name); err != nil {
			return api.VM{}, err
		}
	}
	if err := m.boot(ctx, &row, im, p, builder); err != nil {
		return api.VM{}, err
	}
	undo.clear()
	m.events.Event(ctx, "info", "vm/"+row.Name, "vm "+row.Name+" created and running")
	return m.VM(ctx, row.Name)
}

// insertVM records a new VM's row (creating) and makes its directory;
// undo forgets it.
func (m *Manager) insertVM(ctx context.Context, req api.CreateVMRequest, im api.Image, builder bool, undo *undoStack) (row store.VM, authNote string, err error) {
	if row, err = m.newVMRow(req, im); err != nil {
		return store.VM{}, "", err
	}
	if !builder {
		if row.AuthSync, authNote, err = m.authSyncFor(req, im); err != nil {
			return store.VM{}, "", err
		}
	}
	if builder && req.Network == nil {
		// Builds run the user's own scripts and download packages, maybe
		// from a mirror on the LAN.
		req.Network = &api.NetworkPolicy{Mode: config.NetworkFull, AllowLAN: true}
	}
	policy, err := m.resolvePolicy(req.Network)
	if err != nil {
		return store.VM{}, "", err
	}
	err = m.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.VM(ctx, req.Name); err == nil {
			return errdefs.Conflict("vm %q already exists; pick another --name or delete it with 'banger vm delete %s'", req.Name, req.Name)
		}
		if err := tx.PutVM(ctx, row); err != nil {
			return err
		}
		return tx.PutVMNetwork(ctx, row.Name, policy)
	})
	if err != nil {
		return store.VM{}, "", err
	}
	undo.push(func() { m.forgetVM(row) })
	if err := os.MkdirAll(row.Dir, 0o700); err != nil {
		return store.VM{}, "", fmt.Errorf("creating vm directory: %w", err)
	}
	return row, authNote, nil
}

func (m *Manager) newVMRow(req api.CreateVMRequest, im api.Image) (store.VM, error) {
	if req.CPUs == 0 {
		req.CPUs = defaultCPUs
	}
	if req.MemoryMiB == 0 {
		req.MemoryMiB = defaultMemoryMiB
	}
	if req.DiskBytes == 0 {
		req.DiskBytes = defaultDiskBytes
	}
	switch {
	case req.CPUs < 1 || req.CPUs > 32:
		return store.VM{}, errdefs.Invalid("--cpus %d is out of range; use 1 to 32", req.CPUs)
	case req.MemoryMiB < 128:
		return store.VM{}, errdefs.Invalid("--memory %d MiB is too small; use at least 128", req.MemoryMiB)
	case req.DiskBytes < 64<<20:
		return store.VM{}, errdefs.Invalid("--disk-size is too small; use at least 64M")
	}
	id := fsutil.RandomHex()
	return store.VM{VM: api.VM{
		ID: id, Name: req.Name, Image: im.Name, State: api.VMCreating, VMM: m.driver.Name(),
		CPUs: req.CPUs, MemoryMiB: req.MemoryMiB, DiskBytes: req.DiskBytes, KeepAlive: req.KeepAlive,
		Dir:        filepath.Join(m.layout.VMsDir, id),
		RuntimeDir: filepath.Join(m.layout.RuntimeDir, "vm", id),
		CreatedAt:  time.Now(),
		AuthSync:   []string{},
	}}, nil
}

// forgetVM removes every trace of a VM that is not running: its disks,
// runtime dir, lease, TAP, pinned host key and row.
func (m *Manager) forgetVM(r store.VM) {
	ctx := context.Background()
	os.RemoveAll(r.Dir)
	os.RemoveAll(r.RuntimeDir)
	if m.net != nil {
		if err := m.net.ReleaseTAP(ctx, r.Name); err != nil {
			m.log.Warn("releasing tap", "vm", r.Name, "err", err)
		}
		if err := m.net.ReleaseLease(ctx, r.Name); err != nil {
			m.log.Warn("releasing lease", "vm", r.Name, "err", err)
		}
	}
	if err := m.hosts.Forget(r.Name); err != nil {
		m.log.Warn("removing known_hosts entry", "vm", r.Name, "err", err)
	}
	if err := m.store.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteVM(ctx, r.Name) }); err != nil {
		m.log.Warn("deleting vm row", "vm", r.Name, "err", err)
	}
	if err := m.syncEgress(ctx); err != nil {
		m.log.Warn("removing the vm's egress rules", "vm", r.Name, "err", err)
	}
}

// DeleteVM stops a VM if it runs (force kills it) and removes it.
func (m *Manager) DeleteVM(ctx context.Context, name string, force bool) error {
	release, err := m.claim(name, opDelete)
	if err != nil {
		return err
	}
	defer release()
	r, err := m.Row(ctx, name)
	if err != nil {
		return err
	}
	if h := r.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		if force {
			// The VM's TAP and address go back to the pools below: never
			// while its VMM could still be using them.
			if err := m.driver.Kill(ctx, h); err != nil && vmm.Alive(h.PID, h.StartTime) {
				return fmt.Errorf("killing vm %q before delete: %w; its process %d still runs, so its address and TAP are kept", name, err, h.PID)
			}
		} else if err := m.shutdown(ctx, &r, h); err != nil {
			return fmt.Errorf("stopping vm %q before delete: %w (use --force to kill it)", name, err)
		}
	}
	m.unwatch(name)
	m.forgetVM(r)
	m.events.Event(ctx, "info", "vm/"+name, "vm "+name+" deleted")
	return nil
}

// undoStack runs registered undo steps in reverse unless cleared.
type undoStack struct{ fns []func() }

func (u *undoStack) push(fn func()) { u.fns = append(u.fns, fn) }
func (u *undoStack) clear()         { u.fns = nil }
func (u *undoStack) run() {
	for i := len(u.fns) - 1; i >= 0; i-- {
		u.fns[i]()
	}
}

func (m *Manager) authorizedKey() (string, error) {
	if m.sshPub != "" {
		return strings.TrimSpace(m.sshPub) + "\n", nil
	}
	data, err := os.ReadFile(m.cfg.SSHKey(m.layout.ConfigDir) + ".pub")
	if err != nil {
		return "", fmt.Errorf("reading your banger ssh public key: %w (restart the daemon to create it)", err)
	}
	return strings.TrimSpace(string(data)) + "\n", nil
}
