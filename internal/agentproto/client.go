package agentproto

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"banger/api/errdefs"
	"banger/internal/version"
)

// Client is the host side of one agent connection. It is safe for
// concurrent use; each call runs on its own yamux stream.
type Client struct {
	sess *yamux.Session
	ka   *keepAlive
	peer Hello
}

// Connect dials with dial and sets up a Client, retrying (dial failures,
// connections dropped while the guest boots) until ctx is done. It returns
// once the agent has answered hello, which means it is ready for calls.
func Connect(ctx context.Context, dial DialFunc) (*Client, error) {
	wait := backoffMin
	for {
		conn, err := dial(ctx)
		if err == nil {
			var c *Client
			if c, err = NewClient(ctx, conn); err == nil {
				return c, nil
			}
			conn.Close()
			if !retryable(err) {
				return nil, err
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connecting to the agent: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, backoffMax)
	}
}

// NewClient runs the sync exchange, yamux and hello on conn. The Client owns
// conn from then on; ctx bounds only the setup.
func NewClient(ctx context.Context, conn net.Conn) (*Client, error) {
	synced, err := HostSync(ctx, conn)
	if err != nil {
		return nil, err
	}
	sess, err := yamux.Client(synced, hostMuxConfig())
	if err != nil {
		return nil, fmt.Errorf("starting yamux: %w", err)
	}
	c := &Client{sess: sess}
	mine := Hello{Protocol: ProtocolVersion, Software: "banger " + version.String()}
	if err := c.do(ctx, CallHello, mine, &c.peer); err != nil {
		sess.Close()
		return nil, fmt.Errorf("greeting the agent: %w", err)
	}
	if err := CheckCompatible(c.peer.Protocol); err != nil {
		sess.Close()
		return nil, err
	}
	c.ka = startKeepAlive(sess)
	return c, nil
}

// retryable reports whether a NewClient failure may go away on a new
// connection; a version mismatch will not.
func retryable(err error) bool { return !errors.Is(err, errdefs.ErrUnsupported) }

// Agent returns what the agent said in hello.
func (c *Client) Agent() Hello { return c.peer }

// Close ends the connection; calls in flight fail.
func (c *Client) Close() error {
	err := c.sess.Close()
	c.ka.close()
	return err
}

// Done is closed when the connection ends (guest gone, Close called).
func (c *Client) Done() <-chan struct{} { return c.sess.CloseChan() }

// call is one open stream after its reply was read.
type call struct {
	st   *yamux.Stream
	br   *bufio.Reader
	stop func() bool
}

func (cl *call) close() {
	cl.stop()
	cl.st.Close()
}

// open starts call name and decodes its reply into result. Cancelling ctx
// while the call is open closes the stream.
func (c *Client) open(ctx context.Context, name string, args, result any) (*call, error) {
	raw, err := EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("opening %s stream: %w", name, err)
	}
	cl := &call{st: st, br: bufio.NewReaderSize(st, 64<<10)}
	cl.stop = context.AfterFunc(ctx, func() {
		st.SetDeadline(time.Now())
		st.Close()
	})
	var rep Reply
	err = WriteLine(st, Header{Call: name, Args: raw})
	if err == nil {
		err = ReadLine(cl.br, ReplyLimit(name), &rep)
	}
	if errors.Is(err, ErrLineTooLong) {
		// The guest is still sending: closing the stream alone would let
		// yamux buffer up to a window of it until the close times out. An
		// agent that breaks a bound is not banger's; drop the connection,
		// and the next call connects again.
		c.sess.Close()
		cl.close()
		return nil, fmt.Errorf("calling agent %s: reply over %d bytes, connection dropped: %w", name, ReplyLimit(name), err)
	}
	if err != nil {
		cl.close()
		return nil, callErr(ctx, name, err)
	}
	if rep.Error != nil {
		cl.close()
		boundError(rep.Error)
		return nil, rep.Error.Err()
	}
	if result != nil && len(rep.Result) > 0 {
		if err := decodeResult(rep.Result, result); err != nil {
			cl.close()
			return nil, fmt.Errorf("decoding %s result: %w", name, err)
		}
	}
	return cl, nil
}

// decodeResult decodes a reply's result into v, bounding every list and
// string of the result types that carry them (bounds.go).
func decodeResult(raw json.RawMessage, v any) error {
	var err error
	switch v := v.(type) {
	case *Stats:
		*v, err = decodeStats(raw)
	case *[]Port:
		if *v, err = decodeList[Port](raw, maxPorts, "ports", false); err == nil {
			for i := range *v {
				boundPort(&(*v)[i])
			}
		}
	case *[]Session:
		if *v, err = decodeList[Session](raw, maxSessions, "sessions", false); err == nil {
			for i := range *v {
				boundSession(&(*v)[i])
			}
		}
	case *Session:
		if err = json.Unmarshal(raw, v); err == nil {
			boundSession(v)
		}
	case *Info:
		if err = json.Unmarshal(raw, v); err == nil {
			boundInfo(v)
		}
	case *HostKeys:
		if err = json.Unmarshal(raw, v); err == nil {
			boundHostKeys(v)
		}
	case *Reidentified:
		if err = json.Unmarshal(raw, v); err == nil {
			boundReidentified(v)
		}
	case *Hello:
		if err = json.Unmarshal(raw, v); err == nil {
			v.Protocol, v.Software = clip(v.Protocol, 32), clip(v.Software, maxFieldLen)
		}
	case *Started:
		if err = json.Unmarshal(raw, v); err == nil {
			v.ID = clip(v.ID, maxFieldLen)
		}
	default:
		err = json.Unmarshal(raw, v)
	}
	return err
}

// do runs a call that is complete after its reply.
func (c *Client) do(ctx context.Context, name string, args, result any) error {
	cl, err := c.open(ctx, name, args, result)
	if err != nil {
		return err
	}
	cl.close()
	return nil
}

// callErr prefers the context's error over the timeout it caused.
func callErr(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("calling agent %s: %w", name, ctx.Err())
	}
	return fmt.Errorf("calling agent %s: %w", name, err)
}
