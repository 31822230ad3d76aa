package server

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Default bounds of a stop (Serve after its context ends).
const (
	// DefaultDrain is how long running calls may finish on their own
	// once the server stops accepting new ones.
	DefaultDrain = 10 * time.Second
	// DefaultUnwind is how long calls still running after the drain
	// may take, once cancelled, to undo what they had begun.
	DefaultUnwind = 30 * time.Second
)

// Option sets an optional setting of a Server.
type Option func(*Server)

// WithDrain sets how long a stop lets running calls finish on their own
// before cancelling them (DefaultDrain).
func WithDrain(d time.Duration) Option { return func(s *Server) { s.drain = d } }

// WithUnwind sets how long a stop waits for cancelled calls to return
// (DefaultUnwind). A call still running after that is logged by route
// and Serve returns without it (a service's Close still waits for the
// claims such a call holds: docs/daemon.md, Goroutines).
func WithUnwind(d time.Duration) Option { return func(s *Server) { s.unwind = d } }

// calls tracks the handlers running, so a stop can wait for the ones
// it cancelled and name those that do not return.
type calls struct {
	mu      sync.Mutex
	next    uint64
	running map[uint64]runningCall
	changed chan struct{} // closed when a call ends; nil when no one waits
	closed  bool          // the server stopped: no new call starts
}

type runningCall struct {
	route   string
	started time.Time
}

// start records a call of route; ok is false once the server stopped.
// end must be called when the handler returns.
func (c *calls) start(route string) (end func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if c.running == nil {
		c.running = map[uint64]runningCall{}
	}
	c.next++
	id := c.next
	c.running[id] = runningCall{route: route, started: time.Now()}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.running, id)
		if c.changed != nil {
			close(c.changed)
			c.changed = nil
		}
	}, true
}

// close refuses every call that has not started yet, and waits up to
// bound for the running ones to return. It lists those still running
// then ("POST /v1/vms (running 42s)"), or nothing when all returned.
func (c *calls) close(bound time.Duration) []string {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.running) == 0 {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return c.list()
		}
	}
}

// list names the running calls, oldest first.
func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := make([]runningCall, 0, len(c.running))
	for _, r := range c.running {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b runningCall) int { return a.started.Compare(b.started) })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s (running %s)", r.route, time.Since(r.started).Round(time.Second))
	}
	return out
}
