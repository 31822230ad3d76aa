// Package monitor samples running VMs (guest stats through the agent,
// the VMM process from /proc, VMM metrics), keeps a bounded history per
// VM, and stops VMs that stay idle for auto_stop_stale_after. It owns the
// pollers and the stats book; VM state it reads from the VM manager.
//
// Locks: the stats book has its own mutex, never held across a call.
package monitor

import (
	"cmp"
	"context"
	"log/slog"
	"sync"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/config"
	"banger/internal/store"
	"banger/internal/vmm"
)

// VMs is what the monitor needs from the VM manager.
type VMs interface {
	Rows(ctx context.Context) ([]store.VM, error)
	Row(ctx context.Context, name string) (store.VM, error)
	Agent(ctx context.Context, name string) (*agentproto.Client, error)
	StopVM(ctx context.Context, name string) (api.VM, error)
}

// Execs counts the exec bridges open on a VM: a client on one means the
// VM is in use, whatever its CPU says.
type Execs interface {
	OpenExecs(vm string) int
}

// Events records what users should read about.
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// Options are what a Monitor needs; every field is required unless noted.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	Events Events
	VMs    VMs
	Execs  Execs
	Driver vmm.Driver
	// IdleCPUPercent is the guest CPU share under which a VM counts as
	// idle for auto-stop; 0 means DefaultIdleCPUPercent (optional).
	IdleCPUPercent float64
}

// Monitor runs the pollers.
type Monitor struct {
	cfg     config.Config
	log     *slog.Logger
	events  Events
	vms     VMs
	execs   Execs
	driver  vmm.Driver
	idleCPU float64

	stats *statsBook // samples and idle clocks

	life    context.Context
	stop    context.CancelFunc
	pollers sync.WaitGroup // stats and metrics pollers, auto-stops in flight
}

// New builds the monitor and starts its pollers; Close stops them.
func New(opts Options) *Monitor {
	m := &Monitor{
		cfg: opts.Config, log: opts.Logger, events: opts.Events, vms: opts.VMs, execs: opts.Execs, driver: opts.Driver,
		idleCPU: cmp.Or(opts.IdleCPUPercent, DefaultIdleCPUPercent),
		stats:   newStatsBook(),
	}
	m.life, m.stop = context.WithCancel(context.Background())
	m.startPollers()
	return m
}

// Close stops the pollers and waits for them and for auto-stops in flight.
func (m *Monitor) Close() {
	m.stop()
	m.pollers.Wait()
}

// Tracked reports whether the monitor holds samples of a VM.
func (m *Monitor) Tracked(name string) bool {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	return m.stats.vms[name] != nil
}
