// Package hostileguest plays a guest whose root replaced banger's agent:
// it speaks the real protocol (sync exchange, yamux, header and reply
// lines, frames) and answers chosen calls with oversized, malformed, slow
// or escape-laden replies, while every other call is relayed to a real
// in-process agent so the VM still boots and works. Tests of host-side
// decoders (internal/agentproto, the daemon's pollers, the web UI) use it to
// prove each one is bounded.
//
// With the fake VMM driver:
//
//	g := hostileguest.New()
//	g.Handle(agentproto.CallStats, hostileguest.Reply(hostileguest.HugeStats(1000, 16<<10)))
//	drv.ServeAgent(g.Serve)
package hostileguest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/hashicorp/yamux"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// Handler answers one call on its stream st. The header line was read;
// whatever the host sent after it can be read from st.
type Handler func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error

// Guest answers calls with its handlers and relays the others.
type Guest struct {
	mu       sync.Mutex
	handlers map[string]Handler
	calls    map[string]int
}

// New returns a Guest with no handlers: it relays every call.
func New() *Guest { return &Guest{handlers: map[string]Handler{}, calls: map[string]int{}} }

// Handle makes h answer call from now on; nil relays it again.
func (g *Guest) Handle(call string, h Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h == nil {
		delete(g.handlers, call)
		return
	}
	g.handlers[call] = h
}

// Calls counts the calls answered by a handler, by name.
func (g *Guest) Calls(call string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[call]
}

func (g *Guest) handler(call string) Handler {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.handlers[call]
	if h != nil {
		g.calls[call]++
	}
	return h
}

// Serve answers one host connection until it ends. real, when not nil, is
// the agent that answers calls without a handler; without it they are
// refused. It matches vmmfake.AgentServer.
func (g *Guest) Serve(ctx context.Context, real *guestagent.Server, conn net.Conn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	synced, err := agentproto.GuestSync(conn)
	if err != nil {
		return fmt.Errorf("syncing with the host: %w", err)
	}
	sess, err := yamux.Server(synced, agentproto.MuxConfig())
	if err != nil {
		return fmt.Errorf("starting yamux: %w", err)
	}
	defer sess.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	var up *upstream
	if real != nil {
		if up, err = dialUpstream(ctx, real, &wg); err != nil {
			return err
		}
		defer up.close()
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if agentproto.SessionEnded(err) {
				return nil
			}
			return fmt.Errorf("accepting stream: %w", err)
		}
		wg.Go(func() {
			defer st.Close()
			stop := context.AfterFunc(cctx, func() { st.Close() })
			defer stop()
			g.serveStream(cctx, up, st)
		})
	}
}

func (g *Guest) serveStream(ctx context.Context, up *upstream, st *yamux.Stream) {
	br := bufio.NewReader(st)
	var h agentproto.Header
	if err := agentproto.ReadLine(br, agentproto.MaxHeaderSize, &h); err != nil {
		return
	}
	rw := struct {
		io.Reader
		io.Writer
	}{br, st}
	if hd := g.handler(h.Call); hd != nil {
		hd(ctx, h, rw)
		return
	}
	if up == nil {
		agentproto.WriteLine(st, agentproto.Reply{Error: &agentproto.Error{Kind: errdefs.KindUnsupported, Message: "no agent behind this hostile guest"}})
		return
	}
	up.relay(h, rw, st)
}

// upstream is a host-side yamux session to the real agent.
type upstream struct {
	sess *yamux.Session
	conn net.Conn
}

func dialUpstream(ctx context.Context, real *guestagent.Server, wg *sync.WaitGroup) (*upstream, error) {
	host, guestEnd := net.Pipe()
	wg.Go(func() { real.ServeConn(ctx, guestEnd) })
	synced, err := agentproto.HostSync(ctx, host)
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("syncing with the real agent: %w", err)
	}
	sess, err := yamux.Client(synced, agentproto.MuxConfig())
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("starting yamux to the real agent: %w", err)
	}
	return &upstream{sess: sess, conn: host}, nil
}

func (u *upstream) close() {
	u.sess.Close()
	u.conn.Close()
}

// relay copies a call to the real agent and back, half-closing each way
// as the other side does.
func (u *upstream) relay(h agentproto.Header, host io.ReadWriter, hostSt *yamux.Stream) {
	st, err := u.sess.OpenStream()
	if err != nil {
		return
	}
	defer st.Close()
	if err := agentproto.WriteLine(st, h); err != nil {
		return
	}
	back := make(chan struct{})
	go func() {
		defer close(back)
		io.Copy(host, st)
		hostSt.Close()
	}()
	io.Copy(st, host)
	st.Close() // half-close: the host is done sending
	<-back
}
