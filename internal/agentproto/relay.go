package agentproto

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// relayBuffer is the copy buffer of each direction of a Relay: large
// enough that a yamux stream sends few, full frames.
const relayBuffer = 128 << 10

// StreamConn is a call's yamux stream once its reply was read: reads come
// from the buffered reader that read the reply (it may already hold bytes
// the peer sent right after it), writes go to the stream. CloseWrite is a
// half close (yamux sends FIN and keeps reading); Close ends both ways.
type StreamConn struct {
	net.Conn
	R *bufio.Reader
}

func (c *StreamConn) Read(p []byte) (int, error) { return c.R.Read(p) }

// CloseWrite tells the peer no more bytes come; reading goes on.
func (c *StreamConn) CloseWrite() error { return c.Conn.Close() }

// Close ends the stream both ways at once, waking a blocked Read.
func (c *StreamConn) Close() error {
	c.Conn.SetDeadline(time.Now())
	return c.Conn.Close()
}

// closeWriter is a connection that can be half closed (TCP, unix, a
// StreamConn).
type closeWriter interface{ CloseWrite() error }

// Relay copies bytes both ways between a and b until both directions have
// ended, then closes both. A direction that reaches EOF half closes its
// destination, so a client that shuts down its writing side still reads
// the answer; an error in either direction (a reset, a peer gone mid
// stream) closes both at once so the other direction ends too. It returns
// the first error, nil when both directions ended with EOF.
func Relay(a, b net.Conn) error {
	var once sync.Once
	abort := func() {
		once.Do(func() {
			a.SetDeadline(time.Now())
			b.SetDeadline(time.Now())
			a.Close()
			b.Close()
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = relayHalf(b, a, abort) })
	wg.Go(func() { errs[1] = relayHalf(a, b, abort) })
	wg.Wait()
	abort()
	return errors.Join(errs[0], errs[1])
}

// relayHalf copies src to dst; at EOF it half closes dst, on error it
// aborts the relay.
func relayHalf(dst, src net.Conn, abort func()) error {
	buf := make([]byte, relayBuffer)
	// Plain reader and writer: keep io.CopyBuffer from taking a
	// ReaderFrom path with its own small buffer.
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	if err != nil {
		abort()
		return err
	}
	if cw, ok := dst.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			abort()
			return err
		}
		return nil
	}
	abort() // no half close: ending this way ends the relay
	return nil
}
