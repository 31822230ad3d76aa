package agentproto_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// frozenConn stands for a paused guest's end: while frozen, the guest
// reads and writes nothing, so the host's writes block as they do on a
// full virtio queue.
type frozenConn struct {
	net.Conn
	mu     sync.Mutex
	frozen chan struct{} // closed while thawed
}

func newFrozenConn(c net.Conn) *frozenConn {
	f := &frozenConn{Conn: c, frozen: make(chan struct{})}
	close(f.frozen)
	return f
}

func (f *frozenConn) gate() {
	f.mu.Lock()
	ch := f.frozen
	f.mu.Unlock()
	<-ch
}

func (f *frozenConn) freeze() {
	f.mu.Lock()
	f.frozen = make(chan struct{})
	f.mu.Unlock()
}

func (f *frozenConn) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.frozen:
	default:
		close(f.frozen)
	}
}

func (f *frozenConn) Read(p []byte) (int, error)  { f.gate(); return f.Conn.Read(p) }
func (f *frozenConn) Write(p []byte) (int, error) { f.gate(); return f.Conn.Write(p) }

func freezableAgent(t *testing.T) (*agentproto.Client, *frozenConn) {
	t.Helper()
	dir := t.TempDir()
	real, err := guestagent.New(guestagent.Config{
		Paths: guestagent.Paths{
			StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "etc"),
			Home: filepath.Join(dir, "home"), SSHDir: filepath.Join(dir, "ssh"),
		},
		InitMode: agentproto.InitModeDev,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(real.Close)
	host, guestEnd := net.Pipe()
	fc := newFrozenConn(guestEnd)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		real.ServeConn(ctx, fc)
	}()
	t.Cleanup(func() {
		cancel()
		fc.thaw()
		guestEnd.Close()
		<-served
	})
	cl, err := agentproto.NewClient(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, fc
}

// A guest paused for many keep-alive timeouts keeps its connection when
// its owner holds the pings, and loses it when nobody does.
func TestKeepAliveOutlivesAPause(t *testing.T) {
	defer agentproto.SetKeepAliveTiming(20*time.Millisecond, 150*time.Millisecond)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	held, heldConn := freezableAgent(t)
	held.HoldKeepAlive(true)
	heldConn.freeze()
	select {
	case <-held.Done():
		t.Fatal("the connection of a paused guest ended while its pings were held")
	case <-time.After(time.Second):
	}
	heldConn.thaw()
	held.HoldKeepAlive(false)
	if _, err := held.Ports(ctx); err != nil {
		t.Errorf("a call after the pause: %v", err)
	}

	lost, lostConn := freezableAgent(t)
	lostConn.freeze()
	select {
	case <-lost.Done():
	case <-ctx.Done():
		t.Fatal("the connection of a hung guest stayed up with pings not held")
	}
}
