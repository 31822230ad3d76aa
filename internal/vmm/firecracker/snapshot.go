package firecracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"banger/internal/fsutil"
	"banger/internal/vmm"
)

var _ vmm.Snapshotter = (*Driver)(nil)

// Roles of the files in a saved state (vmm.State.Files), and their names.
const (
	RoleMemory = "memory"
	RoleDevice = "device"

	memoryFile = "memory"
	deviceFile = "vmstate"
)

// SnapshotTimeout bounds a snapshot create or load, which write or map
// the whole guest memory: far longer than other requests.
const SnapshotTimeout = 10 * time.Minute

// Pause freezes the guest's vCPUs (PATCH /vm Paused). Firecracker takes
// a pause of a paused VM as done.
func (d *Driver) Pause(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.client(h).PatchVM(ctx, VMPaused); err != nil {
		return fmt.Errorf("pausing vm: %w", err)
	}
	return nil
}

// Resume runs a paused or restored VM (PATCH /vm Resumed).
func (d *Driver) Resume(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.client(h).PatchVM(ctx, VMResumed); err != nil {
		return fmt.Errorf("resuming vm: %w", err)
	}
	return nil
}

// SaveState takes a full snapshot of a paused VM into dir (under the
// jailer, at the chroot's top, then moved into dir): the guest
// memory (role "memory") and the microVM state (role "device"). Both are
// written under temporary names, synced, then renamed, so dir never
// holds a file that looks whole and is not. Firecracker refuses a VM
// that is not paused.
func (d *Driver) SaveState(ctx context.Context, h *vmm.Handle, dir string) (_ vmm.State, err error) {
	if err := vmm.CheckAlive(h); err != nil {
		return vmm.State{}, err
	}
	jail := h.Sockets[keyJail]
	dir, err = filepath.Abs(dir)
	if err != nil {
		return vmm.State{}, err
	}
	c := d.client(h)
	version, err := c.Version(ctx)
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	mc, err := c.MachineConfig(ctx)
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	final := map[string]string{RoleMemory: memoryFile, RoleDevice: deviceFile}
	tmp := func(role string) string { return filepath.Join(dir, "."+final[role]+".partial") }
	// Firecracker writes where it is told: dir, or the chroot's top under
	// the jailer, from where the files move to dir.
	fcPath := tmp
	if jail != "" {
		fcPath = func(role string) string { return "/" + filepath.Base(tmp(role)) }
	}
	c.Timeout = SnapshotTimeout
	err = c.CreateSnapshot(ctx, SnapshotCreateParams{
		SnapshotPath: fcPath(RoleDevice), MemFilePath: fcPath(RoleMemory), SnapshotType: SnapshotFull,
	})
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	st := vmm.State{Driver: Name, VMMVersion: version, Dir: dir, Files: final, CPUs: mc.VcpuCount, MemoryMiB: mc.MemSizeMib}
	// A file refused, or any other error, leaves nothing of this save:
	// neither in dir nor in the chroot.
	defer func() {
		if err != nil {
			for _, role := range []string{RoleMemory, RoleDevice} {
				os.Remove(tmp(role))
				if jail != "" {
					os.Remove(filepath.Join(jail, fcPath(role)))
				}
			}
		}
	}()
	for _, role := range []string{RoleMemory, RoleDevice} {
		var n int64
		if jail != "" {
			n, err = moveOut(filepath.Join(jail, fcPath(role)), tmp(role), role)
		} else {
			n, err = syncWritten(tmp(role), role)
		}
		if err != nil {
			return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
		}
		st.Bytes += n
	}
	for _, role := range []string{RoleMemory, RoleDevice} {
		if err = os.Rename(tmp(role), filepath.Join(dir, final[role])); err != nil {
			return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
		}
	}
	if err = fsutil.SyncDir(dir); err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	return st, nil
}

// written is what a file Firecracker wrote for a snapshot must be.
func written(role string) fileCheck {
	return fileCheck{what: "the saved " + role, single: true, fromVMM: true}
}

// moveOut moves the file Firecracker wrote in its chroot for role to dst,
// which must be on the same filesystem (as the disks linked into the
// chroot are), takes it from the jail's user (a saved state is
// bangerd's, and VMs restored from it only read it, see linkState),
// syncs it and returns what it takes on disk. The chroot is the jail's,
// so src may be anything: only a regular file with one name is taken,
// and after the rename it is changed only through a descriptor opened
// without following links. A refused file does not stay at dst.
func moveOut(src, dst, role string) (int64, error) {
	fi, err := os.Lstat(src)
	if err != nil {
		return 0, fmt.Errorf("moving %s out of the chroot: %w", src, err)
	}
	if err := written(role).check(src, fi); err != nil {
		return 0, err
	}
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return 0, fmt.Errorf("moving %s out of the chroot: %w; put the jailer's chroot base (jailer_chroot_base) on the filesystem of banger's state directory", src, err)
		}
		return 0, fmt.Errorf("moving %s out of the chroot: %w", src, err)
	}
	n, err := takeWritten(dst, role)
	if err != nil {
		os.Remove(dst)
		return 0, err
	}
	return n, nil
}

// takeWritten gives the file Firecracker wrote at path to bangerd's user,
// mode 0600, syncs it and returns what it takes on disk.
func takeWritten(path, role string) (int64, error) {
	f, err := openInJail(path, os.O_RDONLY, written(role))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Chown(os.Geteuid(), os.Getegid()); err != nil {
		return 0, fmt.Errorf("taking %s from the jail's user: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return 0, fmt.Errorf("taking %s from the jail's user: %w", path, err)
	}
	return syncOpen(f, path)
}

// syncWritten flushes the file Firecracker wrote at path (without the
// jailer) to disk and returns what it takes on disk.
func syncWritten(path, role string) (int64, error) {
	f, err := openInJail(path, os.O_RDONLY, written(role))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return syncOpen(f, path)
}

func syncOpen(f *os.File, path string) (int64, error) {
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("syncing %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return blocksOf(fi), nil
}

// Restore starts a new Firecracker for spec and loads st into it, paused.
// The memory file is mapped privately (backend File), so forks of one
// state share its pages and never write it. The overrides move the
// network interface to spec's TAP and the vsock device to spec's runtime
// dir; the disks are the drives/<id> links of spec's runtime dir (see
// plainLayout), or under the jailer the links in spec's chroot, so they
// are spec's disks, not the saved VM's. The MAC,
// CPUs and memory are the saved VM's: Firecracker cannot change them, so
// spec must match (the guest agent applies a new identity).
func (d *Driver) Restore(ctx context.Context, spec vmm.Spec, st vmm.State) (h *vmm.Handle, err error) {
	if err := checkSpec(spec); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	if err := checkState(spec, st); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	bin, err := exec.LookPath(d.opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w; install Firecracker (v1.15 or newer) or set firecracker_bin in the config", d.opts.Binary, err)
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	l, argv, err := d.prepare(spec, bin)
	undo = append(undo, l.removeFiles)
	if err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	if err := d.linkState(l, st); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	p, err := spawn(argv, l.workDir(), spec.ConsoleLog, pidPath(spec.RuntimeDir))
	if err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	undo = append(undo, p.kill)
	c := d.newClient(l.api)
	if err := waitAPI(ctx, c, p); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w%s", spec.Name, err, consoleTail(spec.ConsoleLog))
	}
	if err := checkStateVersion(ctx, c, st); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w", spec.Name, err)
	}
	c.Timeout = max(c.Timeout, SnapshotTimeout)
	if err := configure(ctx, c, restorePlan(spec, l, st)); err != nil {
		return nil, fmt.Errorf("restoring vm %s: %w%s", spec.Name, err, consoleTail(spec.ConsoleLog))
	}
	return l.handle(p), nil
}

// Names of a saved state's files in a chroot.
var jailStateFiles = map[string]string{RoleMemory: "/state-memory", RoleDevice: "/state-vmstate"}

// linkState hard-links a state's files into the chroot, under the
// jailer, readable by the jail's group only: warm creates restore many
// VMs from one template, which a jailed Firecracker must not be able to
// change.
func (d *Driver) linkState(l layout, st vmm.State) error {
	if l.jailRoot == "" {
		return nil
	}
	j := d.opts.Jailer
	for _, role := range []string{RoleMemory, RoleDevice} {
		// A state is Firecracker's work, and may have been a jail's: a
		// link in it would share what it points to with this jail.
		src := filepath.Join(st.Dir, st.Files[role])
		c := fileCheck{what: "the saved " + role, fromVMM: true}
		fi, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("checking the saved %s: %w", role, err)
		}
		if err := c.check(src, fi); err != nil {
			return err
		}
		dst := filepath.Join(l.jailRoot, jailStateFiles[role])
		if err := linkIn(src, dst); err != nil {
			return err
		}
		if err := j.shareRead(dst, c); err != nil {
			return err
		}
	}
	return nil
}

// restorePlan is every request of a restore: logging (the only
// configuration Firecracker takes before a load), then the load.
func restorePlan(spec vmm.Spec, l layout, st vmm.State) []apiCall {
	file := func(role string) string {
		if l.jailRoot != "" {
			return jailStateFiles[role]
		}
		return filepath.Join(st.Dir, st.Files[role])
	}
	load := SnapshotLoadParams{
		SnapshotPath:  file(RoleDevice),
		MemBackend:    &MemoryBackend{BackendType: BackendFile, BackendPath: file(RoleMemory)},
		VsockOverride: &VsockOverride{UdsPath: l.fc.vsock},
		ResumeVM:      false,
	}
	if spec.Net != nil {
		load.NetworkOverrides = []NetworkOverride{{IfaceID: netIfaceID, HostDevName: spec.Net.TAP}}
	}
	return []apiCall{
		{"configuring the log", http.MethodPut, "/logger", Logger{LogPath: l.fc.log, Level: "Info", ShowLevel: true}},
		{"configuring metrics", http.MethodPut, "/metrics", Metrics{MetricsPath: l.fc.metrics}},
		{"loading the saved state", http.MethodPut, "/snapshot/load", load},
	}
}

// checkState refuses a state this driver cannot restore for spec.
func checkState(spec vmm.Spec, st vmm.State) error {
	var errs []error
	if st.Driver != Name {
		errs = append(errs, fmt.Errorf("the state was saved by the %s driver, not %s", st.Driver, Name))
	}
	if st.CPUs != spec.CPUs || st.MemoryMiB != spec.MemoryMiB {
		errs = append(errs, fmt.Errorf("the state was saved with %d cpus and %d MiB, the vm has %d cpus and %d MiB; restore it with the saved sizes",
			st.CPUs, st.MemoryMiB, spec.CPUs, spec.MemoryMiB))
	}
	for _, role := range []string{RoleMemory, RoleDevice} {
		name := st.Files[role]
		if name == "" || strings.ContainsRune(name, '/') {
			errs = append(errs, fmt.Errorf("the state names no %s file", role))
			continue
		}
		path := filepath.Join(st.Dir, name)
		fi, err := os.Lstat(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking the saved %s: %w", role, err))
			continue
		}
		if err := (fileCheck{what: "the saved " + role, fromVMM: true}).check(path, fi); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkStateVersion refuses a state written by another Firecracker
// release: the snapshot format changes between minor releases, and
// Firecracker only loads its own.
func checkStateVersion(ctx context.Context, c *Client, st vmm.State) error {
	if err := checkVersion(ctx, c); err != nil {
		return err
	}
	v, err := c.Version(ctx)
	if err != nil {
		return fmt.Errorf("checking the firecracker version: %w", err)
	}
	if minorOf(v) != minorOf(st.VMMVersion) {
		return fmt.Errorf("the state was saved by firecracker %s and this is %s, which cannot load it; restore it with firecracker %s",
			st.VMMVersion, v, st.VMMVersion)
	}
	return nil
}

// minorOf is "1.16" of "1.16.1" or "v1.16.1".
func minorOf(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}
