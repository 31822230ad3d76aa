package bridge

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
	"banger/internal/paths"
)

// Remote is the guest end of a bridge: an attached session or an exec.
type Remote interface {
	// Write sends bytes to the process's stdin.
	Write(p []byte) (int, error)
	// CloseStdin closes the process's stdin after what was written.
	CloseStdin() error
	// Signal sends a signal ("INT", "TERM", ...) to the process.
	Signal(sig string) error
	// Detach ends the bridge's hold: a session keeps running, an exec is
	// killed. Wait then returns ErrDetached.
	Detach() error
	// Wait returns once the process ended (its status, nil when unknown)
	// or the remote was detached, after all output was written.
	Wait() (*api.ExitStatus, error)
}

// Resizer is a Remote on a terminal (an exec with a TTY) whose size the
// client may change.
type Resizer interface {
	Resize(rows, cols uint16) error
}

// ErrDetached is what Remote.Wait returns after Detach.
var ErrDetached = errors.New("detached")

// AcceptWait is how long a bridge waits for its client.
const AcceptWait = 30 * time.Second

// Bridge is a unix socket that accepts one client of the daemon's own user
// and relays a Remote to it in stdio_mux_v1.
type Bridge struct {
	// Path is the socket; it is removed once a client connected or the
	// wait ran out.
	Path string
	ln   *net.UnixListener
	log  *slog.Logger
	out  gate
}

// Listen creates a bridge socket (0600) in dir (created 0700). Sockets
// in dir left by an earlier daemon process are removed.
func Listen(dir string, log *slog.Logger) (*Bridge, error) {
	if err := paths.EnsurePrivateDir(dir); err != nil {
		return nil, err
	}
	sweep(dir)
	var b [8]byte
	rand.Read(b[:])
	p := filepath.Join(dir, fmt.Sprintf("%d-%s.sock", os.Getpid(), hex.EncodeToString(b[:])))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("creating bridge socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting bridge socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &Bridge{Path: p, ln: ln, log: log, out: gate{ready: make(chan struct{})}}, nil
}

// Stdout and Stderr take the remote's output. Writes wait until a client
// is connected and fail once the bridge is over.
func (b *Bridge) Stdout() io.Writer { return gateWriter{&b.out, stdiomux.TypeStdout} }
func (b *Bridge) Stderr() io.Writer { return gateWriter{&b.out, stdiomux.TypeStderr} }

// Close gives up on a bridge that will not be served.
func (b *Bridge) Close() {
	b.ln.Close()
	b.out.open(nil)
}

// Serve waits up to wait for the client, sends it hello, then relays
// until the remote ends, the client leaves or ctx ends (both detach), and
// finishes with the Exit frame.
func (b *Bridge) Serve(ctx context.Context, r Remote, hello stdiomux.Control, wait time.Duration) {
	c, err := b.accept(ctx, wait)
	b.ln.Close()
	if err != nil {
		b.out.open(nil)
		r.Detach()
		r.Wait()
		b.log.Info("bridge closed without a client", "socket", b.Path, "err", err)
		return
	}
	defer c.Close()
	fw := stdiomux.NewWriter(c)
	hello.Op, hello.Protocol = stdiomux.OpHello, stdiomux.Protocol
	if err := fw.WriteJSON(stdiomux.TypeControl, hello); err != nil {
		b.out.open(nil)
		r.Detach()
		r.Wait()
		return
	}
	b.out.open(fw)
	stop := context.AfterFunc(ctx, func() { r.Detach() })
	defer stop()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		relayInput(c, r)
	}()
	exit, err := r.Wait()
	end := stdiomux.End{Exit: exit}
	switch {
	case errors.Is(err, ErrDetached):
		end = stdiomux.End{Detached: true}
	case err != nil:
		end = stdiomux.End{Error: &api.Error{Kind: errdefs.KindOf(err), Message: err.Error()}}
	}
	fw.WriteJSON(stdiomux.TypeExit, end)
	c.Close()
	<-readerDone
}

// sweep removes the sockets of other (earlier) daemon processes; only one
// daemon runs per user, and bridge names start with its pid.
func sweep(dir string) {
	mine := fmt.Sprintf("%d-", os.Getpid())
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), mine) && strings.HasSuffix(e.Name(), ".sock") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (b *Bridge) accept(ctx context.Context, wait time.Duration) (*net.UnixConn, error) {
	b.ln.SetDeadline(time.Now().Add(wait))
	stop := context.AfterFunc(ctx, func() { b.ln.SetDeadline(time.Now()) })
	defer stop()
	for {
		c, err := b.ln.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && uid == os.Getuid() {
			return c, nil
		}
		b.log.Warn("refused bridge connection from another user", "peer_uid", uid, "err", err)
		c.Close()
	}
}

// relayInput reads the client's frames. Stdin goes through a queue so
// that control frames (detach, signal) are not stuck behind a process
// that does not read its input; eof goes through the same queue, after
// the data before it. The client leaving detaches.
func relayInput(c net.Conn, r Remote) {
	queue := make(chan []byte, 32) // nil marks eof
	done := make(chan struct{})
	// Detach first: it unblocks a write stuck on a process that does not
	// read, so the queue drains.
	defer func() { r.Detach(); close(queue); <-done }()
	go func() {
		defer close(done)
		for p := range queue {
			if p == nil {
				r.CloseStdin()
				continue
			}
			r.Write(p)
		}
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		t, payload, err := stdiomux.ReadFrame(br, nil)
		if err != nil {
			return
		}
		switch t {
		case stdiomux.TypeStdin:
			if len(payload) > 0 {
				queue <- payload
			}
		case stdiomux.TypeControl:
			var ctl stdiomux.Control
			if json.Unmarshal(payload, &ctl) != nil {
				return
			}
			switch ctl.Op {
			case stdiomux.OpEOF:
				queue <- nil
			case stdiomux.OpDetach:
				return
			case stdiomux.OpSignal:
				r.Signal(ctl.Signal)
			case stdiomux.OpResize:
				if rz, ok := r.(Resizer); ok && ctl.Rows > 0 && ctl.Cols > 0 {
					rz.Resize(ctl.Rows, ctl.Cols)
				}
			}
		default:
			return // not a client frame: the stream is out of step
		}
	}
}

func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// gate holds the remote's output until a client is connected.
type gate struct {
	once  sync.Once
	ready chan struct{}
	fw    *stdiomux.Writer // nil: the bridge is over without a client
}

func (g *gate) open(fw *stdiomux.Writer) {
	g.once.Do(func() {
		g.fw = fw
		close(g.ready)
	})
}

type gateWriter struct {
	g *gate
	t stdiomux.Type
}

var errNoClient = errors.New("no client connected to the bridge")

func (w gateWriter) Write(p []byte) (int, error) {
	<-w.g.ready
	if w.g.fw == nil {
		return 0, errNoClient
	}
	return w.g.fw.Stream(w.t).Write(p)
}
