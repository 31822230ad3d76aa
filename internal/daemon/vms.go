package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/image"
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

// VMs lists every VM.
func (d *Daemon) VMs(ctx context.Context) ([]api.VM, error) {
	rows, err := d.store.VMs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.VM, 0, len(rows))
	for _, r := range rows {
		out = append(out, d.toAPI(ctx, r))
	}
	return out, nil
}

// VM returns one VM.
func (d *Daemon) VM(ctx context.Context, name string) (api.VM, error) {
	r, err := d.vmRow(ctx, &d.store.Reader, name)
	if err != nil {
		return api.VM{}, err
	}
	return d.toAPI(ctx, r), nil
}

func (d *Daemon) vmRow(ctx context.Context, tx *store.Reader, name string) (store.VM, error) {
	r, err := tx.VM(ctx, name)
	if errors.Is(err, store.ErrNoRow) {
		return store.VM{}, errdefs.NotFound("vm %q not found; run 'banger vm list' to see your VMs", name)
	}
	return r, err
}

func (d *Daemon) toAPI(ctx context.Context, r store.VM) api.VM {
	v := api.VM{
		ID: r.ID, Name: r.Name, Image: r.Image, State: r.State, VMM: r.VMM, CPUs: r.CPUs, MemoryMiB: r.MemoryMiB,
		DiskBytes: r.DiskBytes, TAP: r.TAP, Dir: r.Dir, RuntimeDir: r.RuntimeDir, HostKey: r.HostKey,
		KeepAlive: r.KeepAlive, LastError: r.LastError, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, StoppedAt: r.StoppedAt,
	}
	if h := r.Handle; h != nil {
		v.PID, v.Accel = h.PID, h.Accel
	}
	if d.net != nil {
		if a, ok := d.net.Addr(ctx, r.Name); ok {
			v.IP = a.String()
			if _, mac, err := d.net.Lease(ctx, r.Name); err == nil {
				v.MAC = mac
			}
		}
	}
	return v
}

// CreateVM makes a VM from an image and boots it, returning once the
// guest agent answers. Each step is undone if a later one fails: no disk,
// lease, TAP, process or row is left behind.
func (d *Daemon) CreateVM(ctx context.Context, req api.CreateVMRequest, p progress.Func) (api.VM, error) {
	useDefault := req.Image == ""
	if useDefault {
		req.Image = d.cfg.DefaultImageName
	}
	if err := image.ValidateName("vm", req.Name); err != nil {
		return api.VM{}, err
	}
	release, err := d.claim("vm/"+req.Name, "create")
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	if useDefault {
		if _, err := d.Image(ctx, req.Image); errors.Is(err, errdefs.ErrNotFound) {
			if _, err := d.ensureDefaultImage(ctx, req.Image, p); err != nil {
				return api.VM{}, err
			}
		}
	}
	im, err := d.imageFor(ctx, req.Image)
	if err != nil {
		return api.VM{}, err
	}
	return d.createVM(ctx, req, im, p)
}

// createVM makes and boots a VM from im; the caller holds the VM's claim.
func (d *Daemon) createVM(ctx context.Context, req api.CreateVMRequest, im api.Image, p progress.Func) (api.VM, error) {
	row, err := d.newVMRow(req, im)
	if err != nil {
		return api.VM{}, err
	}
	var undo undoStack
	defer undo.run()
	err = d.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.VM(ctx, req.Name); err == nil {
			return errdefs.Conflict("vm %q already exists; pick another --name or delete it with 'banger vm delete %s'", req.Name, req.Name)
		}
		return tx.PutVM(ctx, row)
	})
	if err != nil {
		return api.VM{}, err
	}
	undo.push(func() { d.forgetVM(row) })
	p.Step("create", fmt.Sprintf("creating vm %s from image %s", row.Name, im.Name))
	if err := os.MkdirAll(row.Dir, 0o700); err != nil {
		return api.VM{}, fmt.Errorf("creating vm directory: %w", err)
	}
	key, err := d.authorizedKey()
	if err != nil {
		return api.VM{}, err
	}
	if _, err := d.provisionDisks(ctx, im, row.Dir, row.DiskBytes, key, p); err != nil {
		return api.VM{}, err
	}
	if d.net != nil {
		if _, _, err := d.net.Lease(ctx, row.Name); err != nil {
			return api.VM{}, err
		}
	}
	if err := d.boot(ctx, &row, im, p); err != nil {
		return api.VM{}, err
	}
	undo.clear()
	d.event(ctx, "info", "vm/"+row.Name, "vm "+row.Name+" created and running")
	return d.VM(ctx, row.Name)
}

func (d *Daemon) newVMRow(req api.CreateVMRequest, im api.Image) (store.VM, error) {
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
	id := newID()
	return store.VM{VM: api.VM{
		ID: id, Name: req.Name, Image: im.Name, State: api.VMCreating, VMM: d.driver.Name(),
		CPUs: req.CPUs, MemoryMiB: req.MemoryMiB, DiskBytes: req.DiskBytes, KeepAlive: req.KeepAlive,
		Dir:        filepath.Join(d.layout.VMsDir, id),
		RuntimeDir: filepath.Join(d.layout.RuntimeDir, "vm", id),
		CreatedAt:  time.Now(),
	}}, nil
}

// forgetVM removes every trace of a VM that is not running: its disks,
// runtime dir, lease, TAP, pinned host key and row.
func (d *Daemon) forgetVM(r store.VM) {
	ctx := context.Background()
	os.RemoveAll(r.Dir)
	os.RemoveAll(r.RuntimeDir)
	if d.net != nil {
		if err := d.net.ReleaseTAP(ctx, r.Name); err != nil {
			d.log.Warn("releasing tap", "vm", r.Name, "err", err)
		}
		if err := d.net.ReleaseLease(ctx, r.Name); err != nil {
			d.log.Warn("releasing lease", "vm", r.Name, "err", err)
		}
	}
	if err := d.hosts.Forget(r.Name); err != nil {
		d.log.Warn("removing known_hosts entry", "vm", r.Name, "err", err)
	}
	if err := d.store.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteVM(ctx, r.Name) }); err != nil {
		d.log.Warn("deleting vm row", "vm", r.Name, "err", err)
	}
}

// DeleteVM stops a VM if it runs (force kills it) and removes it.
func (d *Daemon) DeleteVM(ctx context.Context, name string, force bool) error {
	release, err := d.claim("vm/"+name, "delete")
	if err != nil {
		return err
	}
	defer release()
	r, err := d.vmRow(ctx, &d.store.Reader, name)
	if err != nil {
		return err
	}
	if h := r.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		if force {
			// The VM's TAP and address go back to the pools below: never
			// while its VMM could still be using them.
			if err := d.driver.Kill(ctx, h); err != nil && vmm.Alive(h.PID, h.StartTime) {
				return fmt.Errorf("killing vm %q before delete: %w; its process %d still runs, so its address and TAP are kept", name, err, h.PID)
			}
		} else if err := d.shutdown(ctx, &r, h); err != nil {
			return fmt.Errorf("stopping vm %q before delete: %w (use --force to kill it)", name, err)
		}
	}
	d.unwatch(name)
	d.forgetVM(r)
	d.event(ctx, "info", "vm/"+name, "vm "+name+" deleted")
	return nil
}

func newID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
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

func (d *Daemon) authorizedKey() (string, error) {
	if d.sshPub != "" {
		return strings.TrimSpace(d.sshPub) + "\n", nil
	}
	data, err := os.ReadFile(d.cfg.SSHKey(d.layout.ConfigDir) + ".pub")
	if err != nil {
		return "", fmt.Errorf("reading your banger ssh public key: %w (restart the daemon to create it)", err)
	}
	return strings.TrimSpace(string(data)) + "\n", nil
}
