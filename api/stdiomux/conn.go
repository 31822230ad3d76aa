package stdiomux

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Conn is the client end of a stdio_mux_v1 socket (what 'banger vm
// session attach' and 'banger vm acp' hold).
type Conn struct {
	c     net.Conn
	fw    *Writer
	br    *bufio.Reader
	hello Control
}

// Dial connects to a bridge socket and reads its hello frame.
func Dial(ctx context.Context, socket string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", socket, err)
	}
	cn, err := NewConn(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return cn, nil
}

// NewConn reads the hello frame from an established stream and takes it
// over.
func NewConn(c net.Conn) (*Conn, error) {
	cn := &Conn{c: c, fw: NewWriter(c), br: bufio.NewReaderSize(c, 64<<10)}
	t, payload, err := ReadFrame(cn.br, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the bridge's hello: %w", noEOF(err))
	}
	if t != TypeControl || json.Unmarshal(payload, &cn.hello) != nil || cn.hello.Op != OpHello {
		return nil, fmt.Errorf("%w: the bridge did not start with hello", ErrMalformed)
	}
	if cn.hello.Protocol != Protocol {
		return nil, fmt.Errorf("the bridge speaks %q, not %s; use a banger CLI of the daemon's version", cn.hello.Protocol, Protocol)
	}
	return cn, nil
}

// Hello is what the bridge said first: whether the process takes input
// and, for attach, the session.
func (c *Conn) Hello() Control { return c.hello }

// Write sends p to the process's stdin.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.fw.Write(TypeStdin, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseStdin closes the process's stdin once what was written arrived.
func (c *Conn) CloseStdin() error { return c.fw.WriteJSON(TypeControl, Control{Op: OpEOF}) }

// Detach ends the bridge: an attached session keeps running (and keeps
// its stdin); an exec is killed.
func (c *Conn) Detach() error { return c.fw.WriteJSON(TypeControl, Control{Op: OpDetach}) }

// Signal sends a signal ("INT", "TERM", ...) to the process.
func (c *Conn) Signal(sig string) error {
	return c.fw.WriteJSON(TypeControl, Control{Op: OpSignal, Signal: sig})
}

// Resize sets the terminal size of an exec with a TTY.
func (c *Conn) Resize(rows, cols uint16) error {
	return c.fw.WriteJSON(TypeControl, Control{Op: OpResize, Rows: rows, Cols: cols})
}

// SendStdin copies r to the process's stdin, then closes it at EOF.
func (c *Conn) SendStdin(r io.Reader) error {
	if _, err := io.Copy(c, r); err != nil {
		return err
	}
	return c.CloseStdin()
}

// Output copies stdout and stderr frames to the writers until the Exit
// frame, which it returns.
func (c *Conn) Output(stdout, stderr io.Writer) (End, error) {
	var buf []byte
	for {
		t, payload, err := ReadFrame(c.br, buf)
		if err != nil {
			return End{}, fmt.Errorf("reading from the bridge: %w", noEOF(err))
		}
		buf = payload[:0]
		switch t {
		case TypeStdout:
			_, err = stdout.Write(payload)
		case TypeStderr:
			_, err = stderr.Write(payload)
		case TypeExit:
			var end End
			if err := json.Unmarshal(payload, &end); err != nil {
				return End{}, fmt.Errorf("%w: bad exit frame: %v", ErrMalformed, err)
			}
			return end, nil
		case TypeControl:
			// Nothing after hello yet; later versions may add some.
		default:
			return End{}, fmt.Errorf("%w: unexpected %s frame from the bridge", ErrMalformed, t)
		}
		if err != nil {
			return End{}, fmt.Errorf("writing output: %w", err)
		}
	}
}

// Close drops the connection, which detaches.
func (c *Conn) Close() error { return c.c.Close() }

// ErrLost is what Output reports when the daemon goes away mid-stream.
var ErrLost = errors.New("the connection to bangerd ended without an exit frame")

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return ErrLost
	}
	return err
}
