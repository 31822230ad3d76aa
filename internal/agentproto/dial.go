package agentproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// DialFunc opens one raw byte stream to a guest's agent.
type DialFunc func(ctx context.Context) (net.Conn, error)

// HybridVsockDialer dials Firecracker's vsock unix socket udsPath, port.
func HybridVsockDialer(udsPath string, port uint32) DialFunc {
	return func(ctx context.Context) (net.Conn, error) { return DialHybridVsock(ctx, udsPath, port) }
}

// UnixDialer dials a QEMU chardev unix socket (or the agent's own
// --listen unix: socket).
func UnixDialer(path string) DialFunc {
	return func(ctx context.Context) (net.Conn, error) { return DialUnix(ctx, path) }
}

// DialHybridVsock connects to guest port through Firecracker's hybrid vsock
// socket udsPath: it writes "CONNECT <port>\n" and reads "OK <n>\n" one byte
// at a time, so bytes the guest sends right after the ack stay in the conn.
// Firecracker closes the socket when nothing listens on port yet, so this
// retries with backoff until ctx is done.
func DialHybridVsock(ctx context.Context, udsPath string, port uint32) (net.Conn, error) {
	return retry(ctx, func(ctx context.Context) (net.Conn, error) {
		return dialHybridVsockOnce(ctx, udsPath, port)
	})
}

// DialUnix connects to the unix socket at path, retrying with backoff until
// ctx is done (the VMM may not have created it yet).
func DialUnix(ctx context.Context, path string) (net.Conn, error) {
	return retry(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, fmt.Errorf("dialing %s: %w", path, err)
		}
		return c, nil
	})
}

// ackTimeout bounds the wait for Firecracker's OK line.
const ackTimeout = 5 * time.Second

func dialHybridVsockOnce(ctx context.Context, udsPath string, port uint32) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", udsPath)
	if err != nil {
		return nil, fmt.Errorf("dialing vsock socket %s: %w", udsPath, err)
	}
	deadline := time.Now().Add(ackTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		c.Close()
		return nil, fmt.Errorf("writing CONNECT %d: %w", port, err)
	}
	line, err := readLineByByte(c, 64)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading vsock ack for port %d: %w", port, err)
	}
	if !strings.HasPrefix(line, "OK ") {
		c.Close()
		return nil, fmt.Errorf("vsock port %d refused: %q", port, line)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// readLineByByte reads up to and excluding '\n' without reading further.
func readLineByByte(r io.Reader, max int) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < max {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("line too long")
}

// Backoff bounds for dial retries.
const (
	backoffMin = 20 * time.Millisecond
	backoffMax = time.Second
)

func retry(ctx context.Context, once DialFunc) (net.Conn, error) {
	wait := backoffMin
	for {
		c, err := once(ctx)
		if err == nil {
			return c, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, backoffMax)
	}
}
