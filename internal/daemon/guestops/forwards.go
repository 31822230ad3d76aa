package guestops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// Bounds of forwarding.
const (
	// maxForwardPorts bounds the ports of one request.
	maxForwardPorts = 64
	// maxForwardConns bounds the open connections of one forward; more
	// wait in the listener's backlog.
	maxForwardConns = 512
	// forwardDialTimeout bounds reaching the agent and the guest port for
	// one accepted connection; longer than the agent's own connect
	// timeout (60 s), so its error, which names the cause, comes first.
	forwardDialTimeout = 75 * time.Second
)

// errForwardStopped ends forwards stopped on request.
var errForwardStopped = errors.New("stopped")

// forwards is the table of open forwards by host port (a host port is
// forwarded to one guest port at most). Its zero value is ready.
type forwards struct {
	mu     sync.Mutex
	byPort map[int]*forward
}

// forward is one listener on 127.0.0.1 whose connections go to a guest
// port through the VM's agent. It ends when its context does: stop, its
// VM stopping, its request ending (not detached), or the daemon closing.
type forward struct {
	info   api.Forward // fixed at start
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once every goroutine ended and the port is free

	active, served atomic.Int64
	mu             sync.Mutex
	lastErr        string
}

func (f *forward) view() api.Forward {
	v := f.info
	v.Active, v.Served = f.active.Load(), f.served.Load()
	f.mu.Lock()
	v.LastError = f.lastErr
	f.mu.Unlock()
	return v
}

func (f *forward) String() string {
	return fmt.Sprintf("%s -> %s:%d", f.info.HostAddr, f.info.VM, f.info.GuestPort)
}

// Forward starts forwarding 127.0.0.1 host ports to a running VM's guest
// ports. Detached forwards are left to the daemon and Forward returns at
// once; otherwise started is called with them and Forward waits until ctx
// ends (then it stops them and returns nil) or they all ended on their own
// (then it returns why, e.g. the VM stopped).
func (g *Ops) Forward(ctx context.Context, vm string, req api.ForwardRequest, started func([]api.Forward)) ([]api.Forward, error) {
	if err := checkPortSpecs(req.Ports); err != nil {
		return nil, err
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return nil, err
	}
	if err := cl.CheckDial(); err != nil {
		return nil, fmt.Errorf("vm %q: %w", vm, err)
	}
	fs, err := g.listenAll(vm, req)
	if err != nil {
		return nil, err
	}
	views := make([]api.Forward, len(fs))
	for i, f := range fs {
		views[i] = f.view()
		g.bridges.Go(func() { g.runForward(f) })
	}
	if req.Detach {
		for _, f := range fs {
			g.events.Event(ctx, "info", "vm/"+vm, "forwarding "+f.String())
		}
		return views, nil
	}
	if started != nil {
		started(views)
	}
	for _, f := range fs {
		select {
		case <-f.done:
		case <-ctx.Done():
			for _, f := range fs {
				f.cancel(errForwardStopped)
				<-f.done
			}
			return g.viewsOf(fs), nil
		}
	}
	return g.viewsOf(fs), fmt.Errorf("forwarding to vm %q ended: %w", vm, context.Cause(fs[0].ctx))
}

func (g *Ops) viewsOf(fs []*forward) []api.Forward {
	out := make([]api.Forward, len(fs))
	for i, f := range fs {
		out[i] = f.view()
	}
	return out
}

func checkPortSpecs(specs []api.PortSpec) error {
	if len(specs) == 0 {
		return errdefs.Invalid("no port to forward; name one, e.g. 8080 or 18080:8080")
	}
	if len(specs) > maxForwardPorts {
		return errdefs.Invalid("%d ports in one forward request; at most %d", len(specs), maxForwardPorts)
	}
	seen := map[int]bool{}
	for _, s := range specs {
		if s.GuestPort < 1 || s.GuestPort > 65535 {
			return errdefs.Invalid("guest port %d is out of range; use 1-65535", s.GuestPort)
		}
		if s.HostPort < 0 || s.HostPort > 65535 {
			return errdefs.Invalid("host port %d is out of range; use 1-65535, or 0 for the guest's port", s.HostPort)
		}
		if h := cmp.Or(s.HostPort, s.GuestPort); seen[h] {
			return errdefs.Invalid("host port %d is named twice; each host port forwards to one guest port", h)
		} else {
			seen[h] = true
		}
	}
	return nil
}

// listenAll opens every listener and registers the forwards, or none.
func (g *Ops) listenAll(vm string, req api.ForwardRequest) ([]*forward, error) {
	var fs []*forward
	fail := func(err error) ([]*forward, error) {
		for _, f := range fs {
			g.fwd.remove(f)
			f.ln.Close()
			f.cancel(err)
		}
		return nil, err
	}
	for _, s := range req.Ports {
		ln, err := g.listen(vm, s, req.AnyPort)
		if err != nil {
			return fail(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithCancelCause(g.life)
		f := &forward{
			info: api.Forward{VM: vm, HostAddr: ln.Addr().String(), HostPort: port, GuestPort: s.GuestPort,
				Detached: req.Detach, CreatedAt: time.Now()},
			ln: ln, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		}
		g.fwd.add(f)
		fs = append(fs, f)
	}
	return fs, nil
}

// listen binds 127.0.0.1 only: a forward never exposes a guest beyond
// this host's own users.
func (g *Ops) listen(vm string, s api.PortSpec, anyPort bool) (net.Listener, error) {
	port := cmp.Or(s.HostPort, s.GuestPort)
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err == nil {
		return ln, nil
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE) && anyPort:
		if ln, err2 := net.Listen("tcp4", "127.0.0.1:0"); err2 == nil {
			return ln, nil
		}
	case errors.Is(err, syscall.EADDRINUSE):
		if f := g.fwd.get(port); f != nil {
			return nil, errdefs.Conflict("host port %d is already forwarded (%s); stop that with 'banger vm forward --stop %s %d', "+
				"or name another host port, e.g. 'banger vm forward %s %d:%d'", port, f, f.info.VM, port, vm, freeHint(port), s.GuestPort)
		}
		return nil, errdefs.Conflict("host port %d is in use by another program; name another host port, e.g. 'banger vm forward %s %d:%d', "+
			"or pass --any-port to let banger pick a free one", port, vm, freeHint(port), s.GuestPort)
	case errors.Is(err, syscall.EACCES):
		return nil, errdefs.Invalid("host port %d is privileged (below 1024) and bangerd may not bind it; "+
			"name a host port above 1023, e.g. 'banger vm forward %s %d:%d'", port, vm, freeHint(port), s.GuestPort)
	}
	return nil, fmt.Errorf("listening on 127.0.0.1:%d: %w", port, err)
}

// freeHint suggests a host port for an error message.
func freeHint(port int) int {
	if port < 1024 {
		return port + 8000
	}
	if port+10000 <= 65535 {
		return port + 10000
	}
	return port - 10000
}

func (t *forwards) add(f *forward) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPort == nil {
		t.byPort = map[int]*forward{}
	}
	t.byPort[f.info.HostPort] = f
}

func (t *forwards) remove(f *forward) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPort[f.info.HostPort] == f {
		delete(t.byPort, f.info.HostPort)
	}
}

func (t *forwards) get(port int) *forward {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPort[port]
}

// of lists a VM's forwards ("" for every VM), by host port.
func (t *forwards) of(vm string) []*forward {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*forward
	for _, f := range t.byPort {
		if vm == "" || f.info.VM == vm {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *forward) int { return a.info.HostPort - b.info.HostPort })
	return out
}

// Forwards lists the open forwards of a VM ("" for every VM).
func (g *Ops) Forwards(vm string) []api.Forward {
	fs := g.fwd.of(vm)
	out := make([]api.Forward, len(fs))
	for i, f := range fs {
		out[i] = f.view()
	}
	return out
}

// StopForwards stops a VM's forwards on hostPorts (every one of the VM's
// when empty) and returns them once their ports are free.
func (g *Ops) StopForwards(ctx context.Context, vm string, hostPorts []int) ([]api.Forward, error) {
	var fs []*forward
	if len(hostPorts) == 0 {
		fs = g.fwd.of(vm)
	}
	for _, p := range hostPorts {
		f := g.fwd.get(p)
		if f == nil || f.info.VM != vm {
			return nil, errdefs.NotFound("no forward from host port %d to vm %q; 'banger vm ports %s' lists its forwards", p, vm, vm)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		f.cancel(errForwardStopped)
	}
	for _, f := range fs {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.viewsOf(fs), nil
}

// runForward accepts connections until the forward's context ends, then
// waits for its connections and its VM watcher and frees the port.
func (g *Ops) runForward(f *forward) {
	defer close(f.done)
	var wg sync.WaitGroup
	wg.Go(func() { g.watchForwardVM(f) })
	stop := context.AfterFunc(f.ctx, func() { f.ln.Close() })
	slots := make(chan struct{}, maxForwardConns)
	for f.ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-f.ctx.Done():
			continue
		}
		c, err := f.ln.Accept()
		if err != nil {
			<-slots
			f.cancel(fmt.Errorf("accepting on %s: %w", f.info.HostAddr, err))
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			g.serveForwardConn(f, c)
		})
	}
	stop()
	f.ln.Close()
	wg.Wait()
	g.fwd.remove(f)
	cause := context.Cause(f.ctx)
	if f.info.Detached || !errors.Is(cause, errForwardStopped) {
		g.events.Event(context.Background(), "info", "vm/"+f.info.VM, fmt.Sprintf("forward %s ended: %v", f, cause))
	}
}

// serveForwardConn relays one accepted connection to the guest port.
func (g *Ops) serveForwardConn(f *forward, c net.Conn) {
	f.served.Add(1)
	f.active.Add(1)
	defer f.active.Add(-1)
	gc, err := g.dialGuest(f)
	if err != nil {
		c.Close()
		f.mu.Lock()
		f.lastErr = err.Error()
		f.mu.Unlock()
		g.log.Debug("forwarded connection refused", "forward", f.String(), "err", err)
		return
	}
	stop := context.AfterFunc(f.ctx, func() { c.Close(); gc.Close() })
	defer stop()
	if err := agentproto.Relay(c, gc); err != nil {
		g.log.Debug("forwarded connection ended", "forward", f.String(), "err", err)
	}
}

func (g *Ops) dialGuest(f *forward) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(f.ctx, forwardDialTimeout)
	defer cancel()
	cl, err := g.vms.Agent(ctx, f.info.VM)
	if err != nil {
		return nil, err
	}
	return cl.Dial(ctx, f.info.GuestPort)
}

// watchForwardVM ends the forward when its VM is no longer running: the
// VM manager drops the agent connection of a VM that stops, and then
// refuses to hand out another.
func (g *Ops) watchForwardVM(f *forward) {
	for f.ctx.Err() == nil {
		cl, err := g.vms.Agent(f.ctx, f.info.VM)
		if err != nil {
			if f.ctx.Err() == nil {
				f.cancel(err)
			}
			return
		}
		select {
		case <-f.ctx.Done():
			return
		case <-cl.Done():
		}
		// The connection dropped: the VM stops, or the agent restarts.
		select {
		case <-f.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// markForwarded notes on each TCP port the host ports forwarded to it.
func (g *Ops) markForwarded(vm string, ports []api.Port) {
	for _, f := range g.fwd.of(vm) {
		for i := range ports {
			if p := &ports[i]; p.Port == f.info.GuestPort && (p.Proto == "tcp" || p.Proto == "tcp6") && !slices.Contains(p.Forwarded, f.info.HostPort) {
				p.Forwarded = append(p.Forwarded, f.info.HostPort)
			}
		}
	}
}
