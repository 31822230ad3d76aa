// Package vmm is the boundary between banger and the programs that run
// VMs (Firecracker, QEMU). A Driver turns a Spec into a running VM
// process and hands back a Handle: plain data the daemon persists, so
// that after a daemon restart the same driver can Adopt the still-running
// VM and keep managing it.
//
// A typical life:
//
//	h, err := d.Create(ctx, spec)   // prepare; Firecracker configures here
//	err = d.Start(ctx, h)           // boot
//	conn, err := d.DialAgent(ctx, h) // talk to the guest agent
//	err = d.Stop(ctx, h)            // ask the guest to power off
//	err = d.Wait(ctx, h)            // the VMM process is gone
//
// After a daemon restart, Adopt(ctx, h) checks that h still names the
// same live process (pid and start time, not just pid) before anything
// else is called on it. Optional features are reported by Capabilities;
// a driver answers ErrUnsupported for what it lacks.
package vmm

import (
	"context"
	"errors"
	"net"
	"time"
)

var (
	// ErrUnsupported is returned for operations a driver does not offer.
	ErrUnsupported = errors.New("not supported by this VMM driver")
	// ErrNotRunning means the handle's process is gone (or is another
	// process that reused its pid).
	ErrNotRunning = errors.New("vm process is not running")
)

// Disk is a block device of the VM. The first disk is the root (/dev/vda).
type Disk struct {
	ID       string // stable name: "rootfs", "work"
	Path     string
	ReadOnly bool
}

// Net attaches the VM to an existing TAP device.
type Net struct {
	TAP string
	MAC string // aa:bb:cc:dd:ee:ff
}

// Spec is everything a driver needs to create a VM. All paths absolute.
type Spec struct {
	Name       string // VM name, for logs and process titles
	RuntimeDir string // private per-VM directory for sockets and pid files (exists, 0700)
	ConsoleLog string // serial console output is appended here
	CPUs       int
	MemoryMiB  int
	Kernel     string
	Initrd     string // optional
	Cmdline    string // kernel command line; drivers append what they need (console, timers)
	Disks      []Disk
	Net        *Net   // optional
	VsockCID   uint32 // guest CID for drivers with vsock; 0 lets the driver choose
}

// Handle identifies a created VM. It is plain data (JSON-encodable) that
// the daemon stores; the driver that made it can use it again after a
// restart via Adopt.
type Handle struct {
	Driver     string            `json:"driver"`
	PID        int               `json:"pid"`
	StartTime  uint64            `json:"start_time"` // process start time in clock ticks since boot (/proc/PID/stat field 22)
	RuntimeDir string            `json:"runtime_dir"`
	Sockets    map[string]string `json:"sockets,omitempty"` // driver-specific: "qmp", "agent", "api", "vsock"
	Accel      string            `json:"accel,omitempty"`   // "kvm" or "tcg" for QEMU
}

// Capabilities say which optional features a driver has.
type Capabilities struct {
	Vsock   bool // agent over AF_VSOCK (else a serial port)
	Metrics bool // VMM-side metrics
	KVM     bool // runs with hardware acceleration on this host
}

// Driver runs VMs with one VMM.
type Driver interface {
	// Name is "firecracker" or "qemu".
	Name() string
	// Capabilities reports optional features on this host.
	Capabilities(ctx context.Context) Capabilities
	// Create prepares a VM and starts its VMM process, paused before boot.
	// On error nothing is left running and RuntimeDir holds no leftovers.
	Create(ctx context.Context, spec Spec) (*Handle, error)
	// Start boots a created VM.
	Start(ctx context.Context, h *Handle) error
	// Stop asks the guest to shut down (ACPI power button or Ctrl-Alt-Del)
	// and returns once the request is delivered; use Wait to see it exit.
	Stop(ctx context.Context, h *Handle) error
	// Kill ends the VMM process at once. Killing a dead VM is not an error.
	Kill(ctx context.Context, h *Handle) error
	// Wait blocks until the VMM process has exited or ctx ends.
	Wait(ctx context.Context, h *Handle) error
	// Adopt checks that h names a live VMM process of this driver after a
	// daemon restart; ErrNotRunning if not.
	Adopt(ctx context.Context, h *Handle) error
	// DialAgent connects to the guest agent's transport. The guest may
	// not be listening yet: callers retry.
	DialAgent(ctx context.Context, h *Handle) (net.Conn, error)
}

// Snapshotter is implemented by drivers that can freeze a VM and save
// and restore its memory and device state (pause, suspend, fork, warm
// templates). The conformance suite checks it for every driver that
// implements it.
type Snapshotter interface {
	// Pause freezes the VM's vCPUs; its VMM process, devices, network and
	// agent transport stay as they are. Pausing a paused VM is no error.
	Pause(ctx context.Context, h *Handle) error
	// Resume thaws a paused VM (or runs one Restore left paused).
	Resume(ctx context.Context, h *Handle) error
	// SaveState writes a paused VM's memory and device state into dir,
	// which exists and is empty, and returns its description. The VM
	// stays paused; the caller stops it or resumes it. On error dir may
	// hold partial files, which the caller removes.
	SaveState(ctx context.Context, h *Handle, dir string) (State, error)
	// Restore starts a new VMM process for spec from st and leaves the
	// guest paused: Resume runs it. spec must describe the device model
	// the state was saved with (CPUs, memory, the same disks in the same
	// order) but may name other paths, another TAP and MAC, and another
	// runtime directory: a fork restores its parent's state onto copies.
	// On error nothing is left running.
	Restore(ctx context.Context, spec Spec, st State) (*Handle, error)
}

// State is a saved VM state, plain data the daemon keeps next to the
// VM's disks.
type State struct {
	Driver string `json:"driver"`
	// VMMVersion is the version of the VMM that wrote it; another version
	// may refuse to load it.
	VMMVersion string `json:"vmm_version"`
	// Dir holds the files; Files names them by role ("memory", "device").
	Dir   string            `json:"dir"`
	Files map[string]string `json:"files"`
	// CPUs and MemoryMiB are the device model a Restore must match.
	CPUs      int `json:"cpus"`
	MemoryMiB int `json:"memory_mib"`
	// Bytes is what the files take on disk.
	Bytes int64 `json:"bytes"`
}

// Releaser is implemented by drivers that leave files or host state
// behind when a VMM exits (sockets, a jail, a cgroup). The daemon calls
// Release once the process is gone, however it ended; Release refuses
// while the process runs.
type Releaser interface {
	Release(ctx context.Context, h *Handle) error
}

// StopTimeouts are the waits of a graceful stop, shared by callers that
// escalate from the guest agent to the VMM to a kill.
type StopTimeouts struct {
	Agent time.Duration // guest agent shutdown
	VMM   time.Duration // ACPI / Ctrl-Alt-Del
	Term  time.Duration // SIGTERM before SIGKILL
}

// DefaultStopTimeouts suit software-emulated guests, the slowest kind.
var DefaultStopTimeouts = StopTimeouts{Agent: 20 * time.Second, VMM: 20 * time.Second, Term: 5 * time.Second}

// MemoryMapper is implemented by Snapshotters whose saved states can keep
// the guest's memory in a file of its own that a Restore maps privately
// (copy on write) instead of reading it: a restore then costs the pages
// the guest touches, not its memory size, and every VM restored from one
// state shares the pages none of them changed. Templates, restored many
// times, are mapped once when they are saved.
type MemoryMapper interface {
	// MapMemory rewrites the state in st.Dir so that its memory is such a
	// file, and returns its new description; a state that has one already
	// is returned as it is. spec describes the saved VM as a Restore's
	// would, its disks the copies saved with the state (they are opened
	// but never written), its TAP one the caller holds for the call (the
	// guest never runs, but the VMM may announce spec's MAC on it); its
	// runtime directory is used and emptied. On error st is left as it
	// was and still loads. It never writes into a file of st (they may be
	// hard links of another state's): it writes new files in st.Dir and
	// may remove st's.
	MapMemory(ctx context.Context, spec Spec, st State) (State, error)
	// Mapped reports whether st's memory is such a file already, so that
	// MapMemory would return it as it is. It only reads st.
	Mapped(st State) bool
}
