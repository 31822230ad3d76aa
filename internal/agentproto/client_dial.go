package agentproto

import (
	"context"
	"fmt"
	"net"

	"banger/api/errdefs"
)

// DialRequest is the argument of dial.
type DialRequest struct {
	Port int `json:"port"` // TCP port in the guest, 1-65535
}

// dialMinor is the first minor version of protocol 1 with the dial call.
const dialMinor = 1

// Dial opens a TCP connection to port in the guest through the agent: the
// agent connects to 127.0.0.1:port (then [::1], then any address a socket
// listens on with that port) and relays bytes between that connection and
// the returned one until either side closes. ctx bounds only the connect.
// Nothing listening in the guest is an unavailable error naming the port.
// The returned conn supports CloseWrite (a half close).
func (c *Client) Dial(ctx context.Context, port int) (*StreamConn, error) {
	if port < 1 || port > 65535 {
		return nil, errdefs.Invalid("guest port %d is out of range; use 1-65535", port)
	}
	if err := c.CheckDial(); err != nil {
		return nil, err
	}
	cl, err := c.open(ctx, CallDial, DialRequest{Port: port}, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to guest port %d: %w", port, err)
	}
	cl.stop() // from here on the caller owns the stream's lifetime
	return &StreamConn{Conn: cl.st, R: cl.br}, nil
}

var _ net.Conn = (*StreamConn)(nil)

// CheckDial reports whether the agent has the dial call, with an error
// that says what to do when it has not.
func (c *Client) CheckDial() error { return c.requireMinor(CallDial, dialMinor) }
