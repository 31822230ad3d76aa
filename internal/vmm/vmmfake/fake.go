// Package vmmfake is a vmm.Driver for tests that cannot boot guests: the
// "VMM process" is a real sleeping process (so pid, start time, signals,
// waiting and re-adoption behave as for a real VMM) and the "guest" is a
// real banger agent served in-process over a pipe. Steps can be told to
// fail, so daemon tests reach every undo path without a VM.
package vmmfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
	"banger/internal/vmm"
)

// Step names for Fail.
const (
	StepCreate   = "create"
	StepStart    = "start"
	StepAgent    = "agent"     // the agent never answers
	StepKill     = "kill"      // Kill fails and the process lives on
	StepAdopt    = "adopt"     // Adopt fails although the process lives
	StepGuestOff = "guest-off" // the guest ignores its agent's shutdown
	StepStop     = "stop"      // the guest ignores the VMM's power button
	StepPause    = "pause"     // Pause fails
	StepResume   = "resume"    // Resume fails
	StepSave     = "save"      // SaveState fails after writing part of the state
	StepRestore  = "restore"   // Restore fails
	StepMap      = "map"       // MapMemory fails
)

// Driver is the fake driver. The zero value is not usable; call New.
type Driver struct {
	dir string // guest state lives under dir/<pid>

	mu    sync.Mutex
	fail  map[string]error
	srvs  map[int]*guestagent.Server
	roots map[int]string // guest state directory by VMM pid, when not dir/<pid>
	// gates pause the agent connections of a VMM (by pid); saved and
	// frozen hold the guests whose state was saved (snapshot.go).
	gates    map[int]*gate
	saved    map[int]string
	frozen   map[string]*frozenGuest
	mapCalls []vmm.Spec
	mappings []*vmm.Handle // mappings' stand-in VMM processes (reap.go)
	onMap    func(ctx context.Context)
	onSave   func(ctx context.Context)
	specs    map[int]vmm.Spec
	boots    int
	// agentOffs counts guests powered off by their agent's shutdown call.
	agentOffs int
	released  map[int]bool // pids whose VMM files were released
	linkDown  map[int]bool // pids whose network link SetLink took down
	handles   []*vmm.Handle
	agentSrv  AgentServer
	console   func(w io.Writer) error
}

// SetConsole makes every VM created from now on write what write produces
// to its console log at Create, as a guest writing its serial port
// would; nil stops it.
func (d *Driver) SetConsole(write func(w io.Writer) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.console = write
}

// writeConsole appends the configured console output to path, opened as
// QEMU opens its console file (append mode).
func (d *Driver) writeConsole(path string) error {
	d.mu.Lock()
	write := d.console
	d.mu.Unlock()
	if write == nil || path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening console log: %w", err)
	}
	defer f.Close()
	return write(f)
}

// AgentServer answers one host connection in place of a VM's agent; real
// is that VM's in-process agent, for the calls it does not replace
// (internal/testutil/hostileguest's Guest.Serve is one).
type AgentServer func(ctx context.Context, real *guestagent.Server, conn net.Conn) error

// ServeAgent makes s answer the agent connections dialled from now on; nil
// restores the plain in-process agent.
func (d *Driver) ServeAgent(s AgentServer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.agentSrv = s
}

// New returns a driver keeping guest state under dir.
func New(dir string) *Driver {
	return &Driver{dir: dir, fail: map[string]error{}, srvs: map[int]*guestagent.Server{},
		roots: map[int]string{}, gates: map[int]*gate{}, saved: map[int]string{}, frozen: map[string]*frozenGuest{},
		specs: map[int]vmm.Spec{}}
}

var (
	_ vmm.Driver      = (*Driver)(nil)
	_ vmm.Releaser    = (*Driver)(nil)
	_ vmm.Snapshotter = (*Driver)(nil)
)

// Fail makes step fail with err from now on (nil clears it).
func (d *Driver) Fail(step string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.fail, step)
		return
	}
	d.fail[step] = err
}

func (d *Driver) failing(step string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fail[step]
}

// Release implements vmm.Releaser: it records that h's files were let go.
func (d *Driver) Release(ctx context.Context, h *vmm.Handle) error {
	if vmm.Alive(h.PID, h.StartTime) {
		return fmt.Errorf("releasing vm files: pid %d still runs", h.PID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.released == nil {
		d.released = map[int]bool{}
	}
	d.released[h.PID] = true
	return nil
}

// Released reports whether the files of the VMM with pid were released.
func (d *Driver) Released(pid int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.released[pid]
}

// AgentShutdowns counts guests powered off through their agent.
func (d *Driver) AgentShutdowns() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.agentOffs
}

// Boots counts successful Starts.
func (d *Driver) Boots() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.boots
}

func (d *Driver) Name() string                                  { return "fake" }
func (d *Driver) Capabilities(context.Context) vmm.Capabilities { return vmm.Capabilities{KVM: true} }
func (d *Driver) Wait(ctx context.Context, h *vmm.Handle) error { return vmm.WaitExit(ctx, h) }
func (d *Driver) Kill(ctx context.Context, h *vmm.Handle) error {
	if err := d.failing(StepKill); err != nil {
		return err
	}
	return d.powerOff(ctx, h)
}
func (d *Driver) Stop(ctx context.Context, h *vmm.Handle) error { return d.powerOff(ctx, h) }
func (d *Driver) Adopt(ctx context.Context, h *vmm.Handle) error {
	if err := d.failing(StepAdopt); err != nil {
		return err
	}
	return d.alive(h)
}
func (d *Driver) Start(ctx context.Context, h *vmm.Handle) error { return d.start(h) }
func (d *Driver) alive(h *vmm.Handle) error                      { return vmm.CheckAlive(h) }

// Create starts the stand-in VMM process.
func (d *Driver) Create(ctx context.Context, spec vmm.Spec) (*vmm.Handle, error) {
	if err := d.failing(StepCreate); err != nil {
		return nil, err
	}
	for _, disk := range spec.Disks {
		if _, err := os.Stat(disk.Path); err != nil {
			return nil, fmt.Errorf("checking disk %s: %w", disk.ID, err)
		}
	}
	if err := d.writeConsole(spec.ConsoleLog); err != nil {
		return nil, err
	}
	return d.startProcess(spec)
}

// startProcess starts the stand-in VMM process for spec.
func (d *Driver) startProcess(spec vmm.Spec) (*vmm.Handle, error) {
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { // reap it whoever kills it; its guest dies with it
		cmd.Wait()
		d.guestDied(cmd.Process.Pid)
	}()
	st, err := vmm.ProcStartTime(cmd.Process.Pid)
	if err != nil {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		return nil, err
	}
	h := &vmm.Handle{Driver: "fake", PID: cmd.Process.Pid, StartTime: st, RuntimeDir: spec.RuntimeDir}
	d.mu.Lock()
	d.handles = append(d.handles, h)
	d.specs[h.PID] = spec
	d.mu.Unlock()
	return h, nil
}

// Live returns the handles of stand-in VMM processes still running.
func (d *Driver) Live() []*vmm.Handle {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*vmm.Handle
	for _, h := range d.handles {
		if vmm.Alive(h.PID, h.StartTime) {
			out = append(out, h)
		}
	}
	return out
}

func (d *Driver) start(h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.failing(StepStart); err != nil {
		return err
	}
	d.mu.Lock()
	d.boots++
	d.mu.Unlock()
	return nil
}

func (d *Driver) powerOff(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.Signal(h, syscall.SIGKILL); err != nil {
		return err
	}
	return vmm.WaitExit(ctx, h)
}

// DialAgent connects a pipe to the VM's in-process agent.
func (d *Driver) DialAgent(ctx context.Context, h *vmm.Handle) (net.Conn, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return nil, err
	}
	if err := d.failing(StepAgent); err != nil {
		return nil, err
	}
	srv, err := d.server(h)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	serve := d.agentSrv
	d.mu.Unlock()
	host, pipeEnd := net.Pipe()
	guestEnd := d.gated(h.PID, pipeEnd)
	if serve != nil {
		go serve(context.Background(), srv, guestEnd)
	} else {
		go srv.ServeConn(context.Background(), guestEnd)
	}
	return host, nil
}

// server returns the guest agent of h's "VM", one per process.
func (d *Driver) server(h *vmm.Handle) (*guestagent.Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.srvs[h.PID]; s != nil {
		return s, nil
	}
	root := d.rootOfLocked(h.PID)
	s, err := guestagent.New(guestagent.Config{
		Paths: guestagent.Paths{
			StateDir: filepath.Join(root, "state"), ConfigDir: filepath.Join(root, "etc"),
			Home: filepath.Join(root, "home"), SSHDir: filepath.Join(root, "ssh"),
		},
		// No SSH server: this "guest" is the host, whose port 22 is not
		// the VM's. The daemon then skips pinning and waiting for SSH.
		InitMode: agentproto.InitModeDev,
		// Never the host's pool: a reseed fails unless a test answers it.
		RandomDevice: filepath.Join(root, "no-random-device"),
		Power: func(bool) error {
			if err := d.failing(StepGuestOff); err != nil {
				return err
			}
			d.mu.Lock()
			d.agentOffs++
			d.mu.Unlock()
			return d.powerOff(context.Background(), h)
		},
	})
	if err != nil {
		return nil, err
	}
	d.srvs[h.PID] = s
	return s, nil
}

// ErrInjected is a convenient error for Fail.
var ErrInjected = errors.New("injected failure")

// guestDied ends what the in-process guest of the VMM pid still runs, as a
// real guest's processes end with its VM: the process groups of its
// running sessions.
//
// A guest whose state was saved (SaveState) does not die with its VMM:
// its agent and its frozen processes are kept as the saved memory, for
// Restore.
func (d *Driver) guestDied(pid int) {
	d.mu.Lock()
	srv := d.srvs[pid]
	root := d.rootOfLocked(pid)
	delete(d.srvs, pid)
	delete(d.roots, pid)
	if g := d.gates[pid]; g != nil {
		g.close()
		delete(d.gates, pid)
	}
	delete(d.specs, pid)
	token, saved := d.saved[pid]
	delete(d.saved, pid)
	if f := d.frozen[token]; saved && f != nil {
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	signalSessions(root, syscall.SIGKILL)
}

// signalSessions sends sig to the process groups of the running sessions
// of the guest whose state is under root.
func signalSessions(root string, sig syscall.Signal) {
	metas, _ := filepath.Glob(filepath.Join(root, "state", "sessions", "*", "meta.json"))
	for _, m := range metas {
		b, err := os.ReadFile(m)
		var ss agentproto.Session
		if err == nil && json.Unmarshal(b, &ss) == nil && ss.State == agentproto.SessionRunning && ss.PID > 0 {
			syscall.Kill(-ss.PID, sig)
		}
	}
}

func (d *Driver) rootOf(pid int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rootOfLocked(pid)
}

func (d *Driver) rootOfLocked(pid int) string {
	if r, ok := d.roots[pid]; ok {
		return r
	}
	return filepath.Join(d.dir, fmt.Sprint(pid))
}
