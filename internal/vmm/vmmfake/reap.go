package vmmfake

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"banger/internal/vmm"
)

// mapPIDFile records, in a mapping's runtime directory, the stand-in VMM
// process MapMemory runs ("PID STARTTIME"), as QEMU's pid file records
// the real one: a daemon killed during the mapping leaves both, and Reap
// finds the process from it.
const mapPIDFile = "fake-vmm.pid"

// startMapping starts the stand-in VMM process of a mapping whose runtime
// directory is rt and records it there. Like a daemonized VMM it is in a
// session of its own and outlives whoever started it.
func (d *Driver) startMapping(rt string) (*vmm.Handle, error) {
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go cmd.Wait() // reap it whoever kills it, as init would
	st, err := vmm.ProcStartTime(cmd.Process.Pid)
	if err != nil {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		return nil, err
	}
	h := &vmm.Handle{Driver: "fake", PID: cmd.Process.Pid, StartTime: st, RuntimeDir: rt}
	if err := os.WriteFile(filepath.Join(rt, mapPIDFile), fmt.Appendf(nil, "%d %d\n", h.PID, st), 0o600); err != nil {
		syscall.Kill(h.PID, syscall.SIGKILL)
		return nil, err
	}
	d.mu.Lock()
	d.mappings = append(d.mappings, h)
	d.mu.Unlock()
	return h, nil
}

// endMapping ends a mapping's stand-in VMM and removes its record, as
// MapMemory does when it returns.
func (d *Driver) endMapping(h *vmm.Handle) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vmm.Signal(h, syscall.SIGKILL)
	vmm.WaitExit(ctx, h)
	os.Remove(filepath.Join(h.RuntimeDir, mapPIDFile))
}

// Reap ends the stand-in VMM process recorded in runtime directory rt by
// a mapping whose caller never came back (a daemon killed meanwhile),
// knowing nothing but rt, as a new daemon knows nothing else: the start
// time in the record guards against a reused pid. It fails, leaving the
// record, while Kill is made to fail (Fail(StepKill)) and the process
// lives on.
func (d *Driver) Reap(ctx context.Context, rt string) error {
	rec := filepath.Join(rt, mapPIDFile)
	b, err := os.ReadFile(rec)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var h vmm.Handle
	if _, err := fmt.Sscanf(string(b), "%d %d", &h.PID, &h.StartTime); err == nil && vmm.Alive(h.PID, h.StartTime) {
		if err := d.failing(StepKill); err != nil {
			return fmt.Errorf("ending the vmm (pid %d) left in %s: %w", h.PID, rt, err)
		}
		if err := vmm.Signal(&h, syscall.SIGKILL); err != nil {
			return err
		}
		if err := vmm.WaitExit(ctx, &h); err != nil {
			return fmt.Errorf("ending the vmm (pid %d) left in %s: %w", h.PID, rt, err)
		}
	}
	return os.Remove(rec)
}

// Mappings returns the stand-in VMM processes of mappings still running,
// whoever started them.
func (d *Driver) Mappings() []*vmm.Handle {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*vmm.Handle
	for _, h := range d.mappings {
		if vmm.Alive(h.PID, h.StartTime) {
			out = append(out, h)
		}
	}
	return out
}
