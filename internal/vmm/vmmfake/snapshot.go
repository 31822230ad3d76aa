package vmmfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"banger/internal/fsutil"
	"banger/internal/guestagent"
	"banger/internal/vmm"
)

// The fake's snapshots. Pause freezes the guest as a VMM stops its vCPUs:
// the processes of its sessions get SIGSTOP and its agent connections
// stop moving bytes (what the host sends waits, as in a paused guest's
// virtio queue). SaveState writes the guest's "memory" into a state file:
// the guest's state directory and a key to its agent, which the driver
// keeps, with the session processes still stopped, when the VMM process
// ends; the real processes stand in for the pages a real VMM writes out.
// Restore starts a new VMM process around that guest, left paused;
// Resume continues its processes where they were.
//
// A state restored into a VM of another name is a fork: the processes
// cannot be copied, so the fork's guest gets a copy of the saved guest's
// files as they were at the save (the "memory" directory beside the
// state file), without its sessions, and an agent of its own.

// Version is the VMM version written into the fake's states; Restore
// refuses a state of another version, as a VMM refuses one it cannot
// load.
const Version = "fake-1"

// stateFile is the fake's memory file, by role "memory" in a State.
const stateFile = "memory"

// savedGuest is what the fake's memory file holds.
type savedGuest struct {
	Version string `json:"version"`
	Key     string `json:"key"`
	Root    string `json:"root"`
	Name    string `json:"name"` // the VM whose guest it is
}

// frozenGuest is a saved guest kept for Restore.
type frozenGuest struct {
	srv  *guestagent.Server
	root string
}

// Pause implements vmm.Snapshotter.
func (d *Driver) Pause(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.failing(StepPause); err != nil {
		return err
	}
	d.gateOf(h.PID).pause()
	signalSessions(d.rootOf(h.PID), syscall.SIGSTOP)
	return nil
}

// Resume implements vmm.Snapshotter. A guest that runs on after its
// state was saved makes that state stale: the driver forgets it.
func (d *Driver) Resume(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.failing(StepResume); err != nil {
		return err
	}
	d.mu.Lock()
	if key, ok := d.saved[h.PID]; ok {
		delete(d.saved, h.PID)
		delete(d.frozen, key)
	}
	d.mu.Unlock()
	signalSessions(d.rootOf(h.PID), syscall.SIGCONT)
	d.gateOf(h.PID).resume()
	return nil
}

// Paused reports whether the VMM with pid is paused.
func (d *Driver) Paused(pid int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.gates[pid]
	return g != nil && g.isPaused()
}

// SaveState implements vmm.Snapshotter; the VM must be paused.
func (d *Driver) SaveState(ctx context.Context, h *vmm.Handle, dir string) (vmm.State, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return vmm.State{}, err
	}
	if !d.Paused(h.PID) {
		return vmm.State{}, errors.New("saving vm state: the vm is not paused")
	}
	d.mu.Lock()
	hold := d.onSave
	d.mu.Unlock()
	if hold != nil {
		hold(ctx)
	}
	path := filepath.Join(dir, stateFile)
	if err := d.failing(StepSave); err != nil {
		os.WriteFile(path, []byte("{partial"), 0o600)
		return vmm.State{}, err
	}
	srv, err := d.server(h)
	if err != nil {
		return vmm.State{}, err
	}
	d.mu.Lock()
	spec := d.specs[h.PID]
	d.mu.Unlock()
	g := savedGuest{Version: Version, Key: fsutil.RandomHex(), Root: d.rootOf(h.PID), Name: spec.Name}
	if err := copyGuest(g.Root, filepath.Join(dir, guestCopy)); err != nil {
		return vmm.State{}, fmt.Errorf("writing vm memory: %w", err)
	}
	b, _ := json.Marshal(g)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return vmm.State{}, fmt.Errorf("writing vm memory: %w", err)
	}
	d.mu.Lock()
	d.frozen[g.Key] = &frozenGuest{srv: srv, root: g.Root}
	d.saved[h.PID] = g.Key
	d.mu.Unlock()
	return vmm.State{
		Driver: d.Name(), VMMVersion: Version, Dir: dir, Files: map[string]string{"memory": stateFile},
		CPUs: spec.CPUs, MemoryMiB: spec.MemoryMiB, Bytes: int64(len(b)),
	}, nil
}

// OnSave makes every SaveState call hold with its context first, as
// long as a real VMM's save would run (tests look at what a save leaves
// meanwhile); nil clears it.
func (d *Driver) OnSave(hold func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onSave = hold
}

// Restore implements vmm.Snapshotter: the new VMM's guest is the saved
// one, paused.
func (d *Driver) Restore(ctx context.Context, spec vmm.Spec, st vmm.State) (*vmm.Handle, error) {
	if err := d.failing(StepRestore); err != nil {
		return nil, err
	}
	if st.Driver != d.Name() {
		return nil, fmt.Errorf("the state was saved by the %s driver, not %s", st.Driver, d.Name())
	}
	if st.VMMVersion != Version {
		return nil, fmt.Errorf("the state was saved by VMM version %q; this VMM (%s) cannot load it", st.VMMVersion, Version)
	}
	if st.CPUs != spec.CPUs || st.MemoryMiB != spec.MemoryMiB {
		return nil, fmt.Errorf("the state is of a vm with %d cpus and %d MiB, not %d and %d", st.CPUs, st.MemoryMiB, spec.CPUs, spec.MemoryMiB)
	}
	b, err := os.ReadFile(filepath.Join(st.Dir, st.Files["memory"]))
	if err != nil {
		return nil, fmt.Errorf("reading vm memory: %w", err)
	}
	var g savedGuest
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("reading vm memory: %w", err)
	}
	d.mu.Lock()
	f := d.frozen[g.Key]
	d.mu.Unlock()
	// Another VM's name makes a fork: a new guest from the state's copy,
	// as does a state whose guest ran on (a template restored again).
	fork := spec.Name != g.Name
	for _, disk := range spec.Disks {
		if _, err := os.Stat(disk.Path); err != nil {
			return nil, fmt.Errorf("checking disk %s: %w", disk.ID, err)
		}
	}
	h, err := d.startProcess(spec)
	if err != nil {
		return nil, err
	}
	if fork || f == nil {
		if err := d.cloneGuest(st.Dir, h.PID); err != nil {
			syscall.Kill(h.PID, syscall.SIGKILL)
			vmm.WaitExit(ctx, h)
			return nil, err
		}
		d.gateOf(h.PID).pause()
		return h, nil
	}
	d.mu.Lock()
	d.srvs[h.PID], d.roots[h.PID], d.saved[h.PID] = f.srv, f.root, g.Key
	g2 := d.gateLocked(h.PID)
	g2.pause()
	d.mu.Unlock()
	return h, nil
}

// Discard ends the processes of every saved guest no VMM runs, as a
// host's memory is gone at its end; tests call it when they finish.
func (d *Driver) Discard() {
	d.mu.Lock()
	var fs []*frozenGuest
	for k, f := range d.frozen {
		fs = append(fs, f)
		delete(d.frozen, k)
	}
	d.mu.Unlock()
	for _, f := range fs {
		signalSessions(f.root, syscall.SIGKILL)
		f.srv.Close()
	}
}

// gate holds a VMM's agent connections while it is paused.
type gate struct {
	mu     sync.Mutex
	paused bool
	open   chan struct{} // closed while not paused
	dead   chan struct{} // closed when the VMM exits
}

func newGate() *gate {
	g := &gate{open: make(chan struct{}), dead: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		g.paused, g.open = true, make(chan struct{})
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.open)
	}
}

func (g *gate) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.dead:
	default:
		close(g.dead)
	}
}

// wait returns once the gate is open, or net.ErrClosed when the VMM or
// the connection (done) ended first.
func (g *gate) wait(done <-chan struct{}) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-done:
		return net.ErrClosed
	case <-g.dead:
		return net.ErrClosed
	}
}

func (d *Driver) gateOf(pid int) *gate {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gateLocked(pid)
}

func (d *Driver) gateLocked(pid int) *gate {
	g := d.gates[pid]
	if g == nil {
		g = newGate()
		d.gates[pid] = g
	}
	return g
}

// gated wraps the guest's end of an agent connection in the VMM's gate.
func (d *Driver) gated(pid int, c net.Conn) net.Conn {
	return &gatedConn{Conn: c, g: d.gateOf(pid), done: make(chan struct{})}
}

// gatedConn moves no bytes while its gate is shut: a read's bytes are
// handed over, and a write is made, only once the guest runs.
type gatedConn struct {
	net.Conn
	g    *gate
	once sync.Once
	done chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if werr := c.g.wait(c.done); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if err := c.g.wait(c.done); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
