// Package qemu is banger's QEMU driver: a microvm machine (the same
// virtio-mmio device model as Firecracker) with KVM when the host has a
// working one, else software emulation (TCG). It is the backend for
// hosts without Firecracker and for banger's end-to-end tests.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"banger/internal/vmm"
)

// Options configure the driver. All fields are optional.
type Options struct {
	// Binary is the qemu-system-x86_64 to run; empty means PATH.
	Binary string
	// Accel forces "kvm" or "tcg"; empty probes KVM once and falls back.
	Accel string
	// KVMDevice is the KVM device probed; empty means /dev/kvm.
	KVMDevice string
	// MemoryDir, when set, keeps each running VM's memory in a file of
	// its own in this directory, mapped shared, instead of anonymous
	// memory: SaveState then copies that file beside a device-only
	// stream instead of streaming the memory, and VMs restored from the
	// state map it privately, sharing the pages they do not change. It
	// must be a filesystem with room for every VM's memory (not a small
	// tmpfs: a guest writing to a full one dies of SIGBUS). See
	// docs/snapshots.md for the measurements behind this choice.
	MemoryDir string
}

// Driver runs microvm machines with qemu-system-x86_64.
type Driver struct {
	opts      Options
	accelOnce sync.Once
	accel     string
	tscKHz    int

	versionMu  sync.Mutex
	versionKey string // the binary's path, size and mtime when version was read
	version    string
}

// New returns a QEMU driver.
func New(opts Options) *Driver {
	if opts.Binary == "" {
		opts.Binary = "qemu-system-x86_64"
	}
	if opts.KVMDevice == "" {
		opts.KVMDevice = "/dev/kvm"
	}
	return &Driver{opts: opts, tscKHz: hostTSCKHz()}
}

var _ vmm.Driver = (*Driver)(nil)

// Name implements vmm.Driver.
func (d *Driver) Name() string { return "qemu" }

// Capabilities implements vmm.Driver.
func (d *Driver) Capabilities(ctx context.Context) vmm.Capabilities {
	return vmm.Capabilities{KVM: d.Accel(ctx) == "kvm", Metrics: true}
}

// Create starts a paused, daemonized QEMU for spec.
func (d *Driver) Create(ctx context.Context, spec vmm.Spec) (*vmm.Handle, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	accel := d.Accel(ctx)
	var mem memBackend
	if p := d.memoryPath(spec.RuntimeDir); p != "" {
		mem = memBackend{Path: p, Share: true}
	}
	return d.launch(ctx, spec, accel, mem, buildArgs(spec, accel, d.tscKHz, mem))
}

// launch runs QEMU with args for spec and returns the handle of the
// daemonized VM process; on error nothing is left running.
func (d *Driver) launch(ctx context.Context, spec vmm.Spec, accel string, mem memBackend, args []string) (*vmm.Handle, error) {
	bin, err := exec.LookPath(d.opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w (install qemu-system-x86)", d.opts.Binary, err)
	}
	d.clean(spec.RuntimeDir)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// The daemonized child lets go of stderr before the parent exits; one
	// that does not must not hold Create up for ever.
	cmd.WaitDelay = 5 * time.Second
	// With -daemonize the parent exits once the VM is set up, after any
	// configuration error; the VM process itself is reparented away from
	// the daemon and keeps running when the daemon stops. So it also
	// outlives a parent killed for a cancelled ctx, and a Create that
	// fails must end it: the caller gets no handle to do so.
	if err := cmd.Run(); err != nil {
		d.reap(spec.RuntimeDir)
		return nil, fmt.Errorf("starting qemu for %s: %v: %s", spec.Name, err, strings.TrimSpace(stderr.String()))
	}
	h, err := readHandle(spec.RuntimeDir, accel)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("starting qemu for %s: %w", spec.Name, ctx.Err())
	}
	if err != nil {
		d.reap(spec.RuntimeDir)
		return nil, err
	}
	if mem.Share {
		// SaveState finds the memory it must copy here.
		h.Sockets["memory"] = mem.Path
	}
	return h, nil
}

// reap ends the QEMU a failed Create may have left running and empties
// the runtime dir (Reap). Nothing is left when the parent died before
// the child was ready: the child then fails to report in and exits.
func (d *Driver) reap(rt string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Reap(ctx, rt)
	d.clean(rt)
}

// Reap ends the QEMU started with runtime directory rt, if one runs, and
// removes what it left in rt: that of a failed Create, or of a mapping
// (MapMemory) whose daemon was killed before it could end it. The pid
// file names it; without a usable one (QEMU died before writing it, or
// it holds garbage), it is the process whose command line names this
// runtime dir's pid file: the pid file was removed before the start,
// and a runtime dir is one VM's alone. Either way the command line must
// name the pid file, so a reused pid is left alone. It fails, leaving
// rt as it is, when such a QEMU still runs after ctx ends.
func (d *Driver) Reap(ctx context.Context, rt string) error {
	pidPath := filepath.Join(rt, pidFile)
	var pids []int
	if pid, err := readPID(rt); err == nil {
		pids = []int{pid}
	} else {
		pids = procsStartedWith(pidPath)
	}
	var errs []error
	for _, pid := range pids {
		st, err := vmm.ProcStartTime(pid)
		if err != nil || !startedWith(pid, pidPath) {
			continue
		}
		h := &vmm.Handle{PID: pid, StartTime: st}
		if err := d.Kill(ctx, h); err != nil && vmm.Alive(pid, st) {
			errs = append(errs, fmt.Errorf("ending qemu (pid %d) of %s: %w", pid, rt, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.clean(rt)
	return nil
}

// startedWith reports whether pid's command line has arg in it.
func startedWith(pid int, arg string) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && slices.Contains(strings.Split(string(data), "\x00"), arg)
}

// procsStartedWith returns the processes whose command line has arg in
// it, this one aside.
func procsStartedWith(arg string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if startedWith(pid, arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func readPID(rt string) (int, error) {
	data, err := os.ReadFile(filepath.Join(rt, pidFile))
	if err != nil {
		return 0, fmt.Errorf("reading qemu pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parsing qemu pid file: %q is not a pid", strings.TrimSpace(string(data)))
	}
	return pid, nil
}

func readHandle(rt, accel string) (*vmm.Handle, error) {
	pid, err := readPID(rt)
	if err != nil {
		return nil, err
	}
	st, err := vmm.ProcStartTime(pid)
	if err != nil {
		return nil, fmt.Errorf("qemu (pid %d) exited right after start: %w", pid, err)
	}
	return &vmm.Handle{
		Driver: "qemu", PID: pid, StartTime: st, RuntimeDir: rt, Accel: accel,
		Sockets: map[string]string{"qmp": filepath.Join(rt, qmpSocket), "agent": filepath.Join(rt, agentSocket)},
	}, nil
}

// Start resumes the paused machine: the kernel begins to boot.
func (d *Driver) Start(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if _, err := qmpDo(ctx, h.Sockets["qmp"], "cont"); err != nil {
		return fmt.Errorf("booting vm: %w", err)
	}
	return nil
}

// Stop presses the ACPI power button.
func (d *Driver) Stop(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if _, err := qmpDo(ctx, h.Sockets["qmp"], "system_powerdown"); err != nil {
		return fmt.Errorf("requesting power down: %w", err)
	}
	return nil
}

// Kill ends QEMU with SIGKILL and waits for it to be gone.
func (d *Driver) Kill(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.Signal(h, 9); err != nil {
		return err
	}
	return vmm.WaitExit(ctx, h)
}

// Wait implements vmm.Driver.
func (d *Driver) Wait(ctx context.Context, h *vmm.Handle) error { return vmm.WaitExit(ctx, h) }

// Adopt checks the process is the QEMU we started and answers on QMP.
func (d *Driver) Adopt(ctx context.Context, h *vmm.Handle) error {
	if h.Driver != "qemu" {
		return fmt.Errorf("handle belongs to driver %q, not qemu", h.Driver)
	}
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := qmpDo(qctx, h.Sockets["qmp"], "query-status"); err != nil {
		return fmt.Errorf("adopting qemu pid %d: %w", h.PID, err)
	}
	return nil
}

// DialAgent connects to the virtio-serial agent port's host socket.
func (d *Driver) DialAgent(ctx context.Context, h *vmm.Handle) (net.Conn, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return nil, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "unix", h.Sockets["agent"])
}

func checkSpec(s vmm.Spec) error {
	var errs []error
	if s.RuntimeDir == "" || s.ConsoleLog == "" || s.Kernel == "" {
		errs = append(errs, errors.New("runtime dir, console log and kernel are required"))
	}
	if len(s.Disks) == 0 {
		errs = append(errs, errors.New("at least one disk (the root) is required"))
	}
	if s.CPUs < 1 || s.MemoryMiB < 64 {
		errs = append(errs, fmt.Errorf("need at least 1 cpu and 64 MiB (got %d, %d)", s.CPUs, s.MemoryMiB))
	}
	for _, p := range append([]string{s.Kernel, s.Initrd}, diskPaths(s.Disks)...) {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("checking %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func diskPaths(ds []vmm.Disk) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Path)
	}
	return out
}

// clean removes what an earlier QEMU of rt left: the sockets must not
// exist when QEMU binds them, and its memory file is as large as the
// memory its guest used.
func (d *Driver) clean(rt string) {
	for _, f := range []string{pidFile, qmpSocket, agentSocket} {
		os.Remove(filepath.Join(rt, f))
	}
	if p := d.memoryPath(rt); p != "" {
		os.Remove(p)
	}
}

// memoryPath is the memory file of the VM with runtime dir rt, or ""
// when VMs run on anonymous memory. Runtime dirs are per VM, so their
// names are too.
func (d *Driver) memoryPath(rt string) string {
	if d.opts.MemoryDir == "" {
		return ""
	}
	return filepath.Join(d.opts.MemoryDir, "banger-"+filepath.Base(rt)+".mem")
}
