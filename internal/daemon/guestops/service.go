// Package guestops is what the daemon does inside running guests through
// their agents: sessions and their attach bridges, exec bridges,
// workspaces, listening ports and the auth sync at boot. It holds no VM
// state; the VM manager answers which VMs run and hands out their agents.
//
// Locks: execMu guards the count of open exec bridges and is never held
// across a call.
package guestops

import (
	"context"
	"log/slog"
	"sync"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/paths"
)

// VMs is what guest operations need from the VM manager.
type VMs interface {
	// Agent returns a running VM's agent, or an error that says why not.
	Agent(ctx context.Context, vm string) (*agentproto.Client, error)
	// VM returns a VM's record (its auth_sync list, for the auth sync).
	VM(ctx context.Context, vm string) (api.VM, error)
	// RecordCredentials records that vm is about to receive the
	// credentials of tools; on error it must not receive them.
	RecordCredentials(ctx context.Context, vm string, tools []string) error
	// Hold claims a VM for an operation until release is called.
	Hold(vm, what string) (release func(), err error)
}

// Events records what users should read about.
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// Options are what Ops needs; every field is required.
type Options struct {
	Layout paths.Layout
	Logger *slog.Logger
	Events Events
	VMs    VMs
}

// Ops runs operations in guests.
type Ops struct {
	layout paths.Layout
	log    *slog.Logger
	events Events
	vms    VMs

	life    context.Context // bridges live in it, not in their request
	stop    context.CancelFunc
	bridges sync.WaitGroup // attach and exec bridges; Close waits for them

	// ProbeTools finds out which tools a guest has for a workspace copy;
	// tests replace it (before any call) to reach every path.
	ProbeTools func(ctx context.Context, cl *agentproto.Client) Tools

	fwd forwards // open port forwards; their goroutines count in bridges

	execMu sync.Mutex
	execs  map[string]int // open exec bridges (vm exec, vm acp) by VM
}

// New builds the service.
func New(opts Options) *Ops {
	g := &Ops{layout: opts.Layout, log: opts.Logger, events: opts.Events, vms: opts.VMs, execs: map[string]int{}, ProbeTools: probeTools}
	g.life, g.stop = context.WithCancel(context.Background())
	return g
}

// Close ends every bridge and waits for them.
func (g *Ops) Close() {
	g.stop()
	g.bridges.Wait()
}

// Ports lists the guest's listening sockets.
func (g *Ops) Ports(ctx context.Context, vm string) ([]api.Port, error) {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return nil, err
	}
	ps, err := cl.Ports(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Port, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.Port{Proto: p.Proto, Addr: p.Addr, Port: p.Port, PID: p.PID, Process: p.Process})
	}
	g.markForwarded(vm, out)
	return out, nil
}
