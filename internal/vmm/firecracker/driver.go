// Package firecracker is banger's production VMM driver: it runs one
// Firecracker process per VM and configures it through Firecracker's HTTP
// API, with a client written by hand from shared/spec/firecracker-api.yaml
// (the Go SDK pins an old API, pulls in CNI and cannot re-adopt a VMM
// after a restart).
//
// Create starts Firecracker detached (its own session, pid file, start
// time in the handle), with the guest's serial console appended to the
// VM's console log, and sends every pre-boot request: logger, metrics,
// machine-config, boot-source, drives, network interface, vsock. The VM
// waits there, configured but not booted, until Start sends InstanceStart.
// Stop sends Ctrl-Alt-Del; the daemon escalates (agent shutdown, Stop,
// SIGTERM, Kill) with the pieces this driver provides. The guest agent is
// reached over Firecracker's hybrid vsock. Metrics (vmm.MetricsReader)
// sums the counters Firecracker flushes to its metrics file. Pause,
// Resume, SaveState and Restore (vmm.Snapshotter) take full snapshots and
// load them into a new Firecracker with the network interface and vsock
// socket moved to the new VM's; Firecracker runs in the runtime dir and
// opens disks through relative drives/<id> links, so a snapshot's drive
// paths name each restored VM's own disks. With
// Options.Jailer set, Firecracker runs under the jailer in a chroot of
// its own. Every API request is bounded by Options.APITimeout.
package firecracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
	"banger/internal/vmm"
)

// Name is the driver's name and Handle.Driver.
const Name = "firecracker"

// Options configure the driver. All fields are optional.
type Options struct {
	// Binary is the firecracker executable; empty means PATH.
	Binary string
	// Jailer, when set, runs Firecracker under the jailer.
	Jailer *Jailer
	// KVMDevice is probed by Capabilities; empty means /dev/kvm.
	KVMDevice string
	// APITimeout bounds each API request, so a wedged Firecracker cannot
	// hang the caller; 0 means DefaultAPITimeout.
	APITimeout time.Duration
}

// DefaultAPITimeout bounds one API request. Firecracker answers pre-boot
// and action requests in milliseconds; only a wedged VMM takes longer.
const DefaultAPITimeout = 10 * time.Second

// ErrNotStarted means a live Firecracker was configured but never booted
// (its instance state is "Not started"): a daemon crash between Create
// and Start. Such a VMM cannot be adopted as running; kill it.
var ErrNotStarted = errors.New("firecracker was created but never started")

// Driver runs VMs with Firecracker. It keeps no state of its own: every
// method works from the Handle, so a new Driver after a daemon restart
// manages the VMs an earlier one created.
type Driver struct {
	opts Options
}

// New returns a Firecracker driver.
func New(opts Options) *Driver {
	if opts.Binary == "" {
		opts.Binary = "firecracker"
	}
	if opts.Jailer != nil && opts.Jailer.Binary == "" {
		j := *opts.Jailer
		j.Binary = "jailer"
		opts.Jailer = &j
	}
	if opts.KVMDevice == "" {
		opts.KVMDevice = "/dev/kvm"
	}
	if opts.APITimeout <= 0 {
		opts.APITimeout = DefaultAPITimeout
	}
	return &Driver{opts: opts}
}

var _ vmm.Driver = (*Driver)(nil)

// Name implements vmm.Driver.
func (d *Driver) Name() string { return Name }

// Capabilities implements vmm.Driver: the agent is on vsock, Firecracker
// writes metrics, and KVM is whatever /dev/kvm allows.
func (d *Driver) Capabilities(ctx context.Context) vmm.Capabilities {
	kvm := false
	if f, err := os.OpenFile(d.opts.KVMDevice, os.O_RDWR, 0); err == nil {
		f.Close()
		kvm = true
	}
	return vmm.Capabilities{Vsock: true, Metrics: true, KVM: kvm}
}

// Create starts Firecracker for spec and configures the VM, leaving it
// ready to boot. On error the process is killed and the runtime files
// (sockets, pid file, log, metrics, chroot) are removed.
func (d *Driver) Create(ctx context.Context, spec vmm.Spec) (h *vmm.Handle, err error) {
	if err := checkSpec(spec); err != nil {
		return nil, fmt.Errorf("creating vm %s: %w", spec.Name, err)
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
		return nil, fmt.Errorf("creating vm %s: %w", spec.Name, err)
	}
	p, err := spawn(argv, l.workDir(), spec.ConsoleLog, pidPath(spec.RuntimeDir))
	if err != nil {
		return nil, fmt.Errorf("creating vm %s: %w", spec.Name, err)
	}
	undo = append(undo, p.kill)
	c := d.newClient(l.api)
	if err := waitAPI(ctx, c, p); err != nil {
		return nil, fmt.Errorf("creating vm %s: %w%s", spec.Name, err, consoleTail(spec.ConsoleLog))
	}
	if err := checkVersion(ctx, c); err != nil {
		return nil, fmt.Errorf("creating vm %s: %w", spec.Name, err)
	}
	if err := configure(ctx, c, bootPlan(spec, l, guestCID(spec))); err != nil {
		return nil, fmt.Errorf("creating vm %s: %w", spec.Name, err)
	}
	return l.handle(p), nil
}

// prepare lays out the VM's files and returns the command to run.
func (d *Driver) prepare(spec vmm.Spec, bin string) (layout, []string, error) {
	if j := d.opts.Jailer; j != nil {
		if err := j.check(); err != nil {
			return layout{}, nil, err
		}
		if uid := os.Geteuid(); uid != 0 {
			return layout{}, nil, fmt.Errorf("the jailer needs root, and bangerd runs as uid %d; run bangerd as root or set firecracker_jailer = false", uid)
		}
		jailer, err := exec.LookPath(j.Binary)
		if err != nil {
			return layout{}, nil, fmt.Errorf("finding %s: %w; install the jailer of the same Firecracker release or set jailer_bin in the config", j.Binary, err)
		}
		// The jailer wants --exec-file absolute.
		if bin, err = filepath.Abs(bin); err != nil {
			return layout{}, nil, err
		}
		l := j.jailLayout(spec, bin)
		if err := l.checkSocketPaths(); err != nil {
			return layout{}, nil, err
		}
		l.removeFiles()
		if err := j.prepareJail(spec, l); err != nil {
			return l, nil, err
		}
		argv := j.argv(spec, bin, l)
		argv[0] = jailer
		return l, argv, nil
	}
	l := plainLayout(spec)
	if err := l.checkSocketPaths(); err != nil {
		return layout{}, nil, err
	}
	if err := l.prepareFiles(); err != nil {
		return l, nil, err
	}
	return l, []string{bin, "--api-sock", l.fc.api, "--id", instanceID(spec)}, nil
}

// Start boots a created VM (InstanceStart).
func (d *Driver) Start(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.client(h).Action(ctx, ActionInstanceStart); err != nil {
		return fmt.Errorf("booting vm: %w", err)
	}
	return nil
}

// Stop sends Ctrl-Alt-Del, which a guest with i8042 support takes as a
// request to shut down; with reboot=k its shutdown ends Firecracker.
func (d *Driver) Stop(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.client(h).Action(ctx, ActionSendCtrlAltDel); err != nil {
		return fmt.Errorf("sending ctrl-alt-del: %w", err)
	}
	return nil
}

// Kill ends Firecracker with SIGKILL, waits for it, and removes its
// runtime files. Killing a dead VM is not an error.
func (d *Driver) Kill(ctx context.Context, h *vmm.Handle) error {
	if !vmm.Alive(h.PID, h.StartTime) {
		return nil
	}
	if err := vmm.Signal(h, syscall.SIGKILL); err != nil {
		return err
	}
	if err := vmm.WaitExit(ctx, h); err != nil {
		return err
	}
	return d.Release(ctx, h)
}

// Release removes what an exited VM leaves on the host: sockets, pid
// file, log, metrics and, under the jailer, the chroot and cgroup. The
// console log and the disks stay. It refuses while the VM runs.
func (d *Driver) Release(ctx context.Context, h *vmm.Handle) error {
	if vmm.Alive(h.PID, h.StartTime) {
		return fmt.Errorf("releasing vm files: firecracker (pid %d) still runs; stop or kill it first", h.PID)
	}
	layoutOf(h).removeFiles()
	return nil
}

// Wait implements vmm.Driver.
func (d *Driver) Wait(ctx context.Context, h *vmm.Handle) error { return vmm.WaitExit(ctx, h) }

// adoptTimeout bounds the API check of Adopt.
const adoptTimeout = 5 * time.Second

// Adopt checks that h is still the Firecracker process it was (pid and
// start time), that it answers on its API socket, and that its guest
// runs: a VMM caught between Create and Start fails with ErrNotStarted.
func (d *Driver) Adopt(ctx context.Context, h *vmm.Handle) error {
	if h.Driver != Name {
		return fmt.Errorf("handle belongs to driver %q, not %s", h.Driver, Name)
	}
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, adoptTimeout)
	defer cancel()
	ii, err := d.client(h).InstanceInfo(ctx)
	if err != nil {
		if !vmm.Alive(h.PID, h.StartTime) {
			return fmt.Errorf("%w (pid %d)", vmm.ErrNotRunning, h.PID)
		}
		return fmt.Errorf("adopting firecracker pid %d: %w", h.PID, err)
	}
	switch ii.State {
	case StateRunning, StatePaused: // paused: by Pause, or restored and not yet resumed
		return nil
	case StateNotStarted:
		return fmt.Errorf("adopting firecracker pid %d: %w (instance state %q); kill it and start the vm again", h.PID, ErrNotStarted, ii.State)
	}
	return fmt.Errorf("adopting firecracker pid %d: instance state is %q, want %q", h.PID, ii.State, StateRunning)
}

// DialAgent connects to the guest agent through the hybrid vsock socket
// (CONNECT agentproto.DefaultVsockPort). It retries while the guest boots and
// gives up with vmm.ErrNotRunning as soon as Firecracker exits.
func (d *Driver) DialAgent(ctx context.Context, h *vmm.Handle) (net.Conn, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if vmm.WaitExit(ctx, h) == nil {
			cancel()
		}
	}()
	path := h.Sockets[keyVsock]
	if h.Sockets[keyJail] != "" {
		// In the jail's chroot: dialled without following a link (see
		// dialSocket), through a descriptor held while the dial retries.
		fd, err := waitSocket(ctx, path, "the vsock socket")
		if err != nil {
			return nil, fmt.Errorf("dialing the agent: %w", err)
		}
		defer unix.Close(fd)
		path = procFD(fd)
	}
	conn, err := agentproto.DialHybridVsock(ctx, path, agentproto.DefaultVsockPort)
	if err != nil {
		if !vmm.Alive(h.PID, h.StartTime) {
			return nil, fmt.Errorf("dialing the agent: %w (pid %d)", vmm.ErrNotRunning, h.PID)
		}
		return nil, fmt.Errorf("dialing the agent: %w", err)
	}
	return conn, nil
}

func (d *Driver) client(h *vmm.Handle) *Client { return d.newClient(h.Sockets[keyAPI]) }

func (d *Driver) newClient(sock string) *Client {
	c := NewClient(sock)
	c.Timeout = d.opts.APITimeout
	return c
}

// driveIDRE is what Firecracker takes as a drive id (it refuses '-').
var driveIDRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func checkSpec(s vmm.Spec) error {
	var errs []error
	if s.RuntimeDir == "" || s.ConsoleLog == "" || s.Kernel == "" {
		errs = append(errs, errors.New("runtime dir, console log and kernel are required"))
	}
	if len(s.Disks) == 0 {
		errs = append(errs, errors.New("at least one disk (the root) is required"))
	}
	if s.CPUs < 1 || s.CPUs > 32 || s.MemoryMiB < 64 {
		errs = append(errs, fmt.Errorf("firecracker runs 1 to 32 cpus with at least 64 MiB (got %d cpus, %d MiB)", s.CPUs, s.MemoryMiB))
	}
	if s.VsockCID != 0 && (s.VsockCID < 3 || s.VsockCID == 1<<32-1) {
		errs = append(errs, fmt.Errorf("vsock cid %d is reserved; use 3 or more, or 0 to let the driver choose", s.VsockCID))
	}
	paths := []string{s.Kernel, s.Initrd}
	for _, d := range s.Disks {
		if !driveIDRE.MatchString(d.ID) {
			errs = append(errs, fmt.Errorf("disk id %q must be 1 to 64 letters, digits or '_' (Firecracker refuses '-')", d.ID))
		}
		paths = append(paths, d.Path)
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("checking %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
