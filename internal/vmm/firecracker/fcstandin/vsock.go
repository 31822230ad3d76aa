package fcstandin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// vsockDev is the host side of the hybrid vsock device: a unix socket at
// path on which "CONNECT <port>\n" is answered "OK <hostport>\n" when the
// guest listens on port, and the connection is closed otherwise.
type vsockDev struct {
	path    string // on this host
	reqPath string // as the request named it (relative to a jail)
	cid     uint32
	ln      net.Listener

	mu       sync.Mutex
	listen   map[uint32]func(net.Conn) // guest ports with a listener
	nextPort uint32
	conns    map[net.Conn]bool // open connections, closed by a reset
	// thawed is closed while the guest runs and open while it is paused:
	// a paused guest neither accepts connections nor moves their bytes.
	thawed chan struct{}
}

// bindVsock binds path, which must not exist (Firecracker does not remove
// stale sockets), and starts accepting.
func bindVsock(path string) (*vsockDev, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, errors.New(`Os { code: 98, kind: AddrInUse, message: "Address in use" }`)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Firecracker leaves it behind
	v := &vsockDev{path: path, ln: ln, listen: map[uint32]func(net.Conn){}, nextPort: 1 << 30,
		conns: map[net.Conn]bool{}, thawed: make(chan struct{})}
	close(v.thawed)
	go v.accept()
	return v, nil
}

// serve makes the guest listen on port.
func (v *vsockDev) serve(port uint32, handle func(net.Conn)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.listen[port] = handle
}

func (v *vsockDev) close() { v.ln.Close() }

// pause freezes the guest's side of the device; resume thaws it.
// Either is idempotent.
func (v *vsockDev) pause() {
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-v.thawed:
		v.thawed = make(chan struct{})
	default:
	}
}

func (v *vsockDev) resume() {
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-v.thawed:
	default:
		close(v.thawed)
	}
}

// running blocks while the guest is paused.
func (v *vsockDev) running() {
	v.mu.Lock()
	ch := v.thawed
	v.mu.Unlock()
	<-ch
}

// reset closes every open connection, as Firecracker's vsock device
// reset at snapshot creation does; guest listeners stay.
func (v *vsockDev) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for c := range v.conns {
		c.Close()
	}
	clear(v.conns)
}

func (v *vsockDev) track(c net.Conn, open bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if open {
		v.conns[c] = true
	} else {
		delete(v.conns, c)
	}
}

// frozenConn is a guest-side connection that moves no bytes while the
// guest is paused.
type frozenConn struct {
	net.Conn
	v *vsockDev
}

func (c frozenConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.v.running() // the guest consumes nothing while paused
	return n, err
}

func (c frozenConn) Write(p []byte) (int, error) {
	c.v.running()
	return c.Conn.Write(p)
}
func (v *vsockDev) accept() {
	for {
		c, err := v.ln.Accept()
		if err != nil {
			return
		}
		go v.handshake(c)
	}
}

// handshake reads the CONNECT line one byte at a time, as Firecracker's
// muxer does, and hands the connection to the guest port's listener.
func (v *vsockDev) handshake(c net.Conn) {
	v.track(c, true)
	defer v.track(c, false)
	port, err := readConnect(c)
	if err != nil {
		c.Close()
		return
	}
	// The host side reads the request; a paused guest answers it only
	// once it runs again.
	v.running()
	v.mu.Lock()
	handle := v.listen[port]
	host := v.nextPort
	v.nextPort++
	v.mu.Unlock()
	if handle == nil {
		c.Close() // nothing listens: Firecracker resets the connection
		return
	}
	if _, err := fmt.Fprintf(c, "OK %d\n", host); err != nil {
		c.Close()
		return
	}
	handle(frozenConn{c, v})
}

func readConnect(r io.Reader) (uint32, error) {
	var line []byte
	var b [1]byte
	for len(line) < 32 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		if b[0] == '\n' {
			rest, ok := strings.CutPrefix(string(line), "CONNECT ")
			if !ok {
				return 0, fmt.Errorf("bad handshake %q", line)
			}
			p, err := strconv.ParseUint(rest, 10, 32)
			return uint32(p), err
		}
		line = append(line, b[0])
	}
	return 0, errors.New("handshake line too long")
}

// serveAgent is a port listener running the banger agent over the conn.
func serveAgent(ctx context.Context, srv interface {
	ServeConn(context.Context, io.ReadWriteCloser) error
}) func(net.Conn) {
	return func(c net.Conn) {
		srv.ServeConn(ctx, c)
		c.Close()
	}
}
