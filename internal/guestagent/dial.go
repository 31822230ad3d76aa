package guestagent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// dialTimeout bounds the connect to a guest port; the host's accepted
// client waits meanwhile. It is generous: a busy service with a short
// listen backlog (busybox httpd's is 9) drops SYNs, and the kernel's
// retries come after 1, 3, 7, 15 and 31 seconds.
const dialTimeout = 60 * time.Second

// dial serves dial: it connects to a TCP port in the guest and relays
// bytes between that connection and the stream until both sides are done
// (or the host connection ends).
func (s *Server) dial(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.DialRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	if req.Port < 1 || req.Port > 65535 {
		return st.reply(nil, errdefs.Invalid("port %d is out of range; use 1-65535", req.Port))
	}
	tc, err := dialGuestPort(ctx, "/proc", req.Port)
	if err != nil {
		return st.reply(nil, err)
	}
	if err := st.reply(nil, nil); err != nil {
		tc.Close()
		return err
	}
	sc := &agentproto.StreamConn{Conn: st.Conn, R: st.br}
	stop := context.AfterFunc(ctx, func() { sc.Close(); tc.Close() })
	defer stop()
	return agentproto.Relay(sc, tc)
}

// dialGuestPort connects to port on loopback, then on each address a TCP
// socket listens on with that port (a server bound to eth0's address
// only). Refusals move on to the next address; the error names the port.
func dialGuestPort(ctx context.Context, procDir string, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	var last error
	refused := false
	for _, addr := range dialTargets(procDir, port) {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
		if err == nil {
			return c, nil
		}
		last = err
		if errors.Is(err, syscall.ECONNREFUSED) {
			refused = true
		}
		// A guest without IPv6 answers ::1 with EAFNOSUPPORT: try the next.
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EAFNOSUPPORT) {
			break
		}
	}
	if refused && (errors.Is(last, syscall.ECONNREFUSED) || errors.Is(last, syscall.EAFNOSUPPORT) || errors.Is(last, syscall.EADDRNOTAVAIL)) {
		return nil, errdefs.Unavailable("nothing listens on tcp port %d in the guest (connection refused); "+
			"start the service, or see what listens with 'banger vm ports'", port)
	}
	return nil, errdefs.Unavailable("connecting to tcp port %d in the guest: %v", port, last)
}

// dialTargets lists the addresses to try for port: loopback first, then
// the specific addresses listening sockets are bound to.
func dialTargets(procDir string, port int) []netip.Addr {
	out := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	for _, proto := range []string{"tcp", "tcp6"} {
		entries, _ := readSockets(filepath.Join(procDir, "net", proto), tcpListen)
		for _, e := range entries {
			a, err := netip.ParseAddr(e.addr)
			if err == nil && e.port == port && !a.IsUnspecified() && !containsAddr(out, a.Unmap()) {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}
