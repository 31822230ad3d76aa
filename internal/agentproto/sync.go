package agentproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
)

// The sync exchange runs before yamux on every connection. A virtio-serial
// port is one byte stream that outlives host connections, so it may hold
// stale bytes from an earlier session in either direction; both sides skip
// anything that is not the line they expect.
//
//	host:  SYNC <n>\n   (repeated with a new n until answered)
//	guest: ACK <n>\n    (for every SYNC seen)
//	host:  START <n>\n  (after the ACK of its latest SYNC; yamux follows)
const (
	syncPrefix  = "BANGER-SYNC "
	ackPrefix   = "BANGER-ACK "
	startPrefix = "BANGER-START "
	maxSyncLine = 128
)

// syncAttempts bound each SYNC's wait for its ACK: short at first, then
// 750 ms for every further one. A guest just restored from a snapshot
// usually loses the first SYNC (its agent still runs the yamux session of
// the connection that was live at the save, which takes the line for a
// frame and ends), so the second must not wait long; a guest slower than
// the first waits answers every SYNC in order, and the host skips the
// ACKs of the earlier ones.
var syncAttempts = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 750 * time.Millisecond}

// syncAttempt is the wait for the ACK of the n-th SYNC (from 1).
func syncAttempt(n int) time.Duration {
	return syncAttempts[min(n, len(syncAttempts))-1]
}

// HostSync runs the host half of the sync exchange and returns a conn that
// yields any bytes read past the ACK. It retries until ctx is done.
func HostSync(ctx context.Context, conn net.Conn) (net.Conn, error) {
	br := bufio.NewReaderSize(conn, 4096)
	defer conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	for n := 1; ; n++ {
		if _, err := fmt.Fprintf(conn, "%s%d\n", syncPrefix, n); err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("writing sync: %w", err))
		}
		ok, err := awaitAck(br, conn, n)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		if ok {
			if _, err := fmt.Fprintf(conn, "%s%d\n", startPrefix, n); err != nil {
				return nil, ctxErr(ctx, fmt.Errorf("writing start: %w", err))
			}
			return &bufConn{Conn: conn, r: br}, nil
		}
	}
}

// awaitAck reads lines until the ACK for n (true), a timeout (false) or an
// error.
func awaitAck(br *bufio.Reader, conn net.Conn, n int) (bool, error) {
	want := ackPrefix + strconv.Itoa(n)
	if err := conn.SetReadDeadline(time.Now().Add(syncAttempt(n))); err != nil {
		return false, fmt.Errorf("setting sync deadline: %w", err)
	}
	for {
		line, err := readSyncLine(br)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("waiting for the agent to answer: %w", err)
		}
		if line == want {
			return true, nil
		}
	}
}

// GuestSync runs the guest half: it answers every SYNC and returns once a
// START arrives. Garbage is skipped.
func GuestSync(conn io.ReadWriteCloser) (io.ReadWriteCloser, error) {
	br := bufio.NewReaderSize(conn, 4096)
	for {
		line, err := readSyncLine(br)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(line, syncPrefix):
			n := strings.TrimPrefix(line, syncPrefix)
			if _, err := io.WriteString(conn, ackPrefix+n+"\n"); err != nil {
				return nil, fmt.Errorf("writing ack: %w", err)
			}
		case strings.HasPrefix(line, startPrefix):
			return &bufRWC{ReadWriteCloser: conn, r: br}, nil
		}
	}
}

// readSyncLine returns the next line without its newline; an over-long run
// of bytes is dropped and reported as an empty line.
func readSyncLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if len(line) > maxSyncLine {
		return "", nil
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("syncing with the agent: %w", ctx.Err())
	}
	return err
}

// bufConn is a net.Conn whose reads drain a bufio.Reader first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type bufRWC struct {
	io.ReadWriteCloser
	r *bufio.Reader
}

func (c *bufRWC) Read(p []byte) (int, error) { return c.r.Read(p) }

// MuxConfig is the yamux configuration both sides use.
func MuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.MaxStreamWindowSize = 1 << 20
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.ConnectionWriteTimeout = 30 * time.Second
	cfg.StreamCloseTimeout = time.Minute
	cfg.StreamOpenTimeout = 30 * time.Second
	return cfg
}

// SessionEnded reports whether err, from accepting a stream, means only
// that the peer went away: its end closed (EOF), the session shut down, or
// a write found the transport already closed or reset. A serve loop ends
// quietly on these and reports anything else.
func SessionEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, yamux.ErrSessionShutdown) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
