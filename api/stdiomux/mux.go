package stdiomux

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"banger/api"
)

// Protocol is the name of the framing on attach and exec sockets.
const Protocol = api.StdioMuxV1

// Type tags a stdio_mux_v1 frame. The values are the agent protocol's, so
// a guest stream relays without translation.
type Type byte

const (
	TypeStdin   Type = 0 // client to daemon: bytes for the process's stdin
	TypeStdout  Type = 1 // daemon to client: the process's stdout
	TypeStderr  Type = 2 // daemon to client: the process's stderr
	TypeControl Type = 3 // either way: a JSON Control
	TypeExit    Type = 4 // daemon to client: a JSON End, always the last frame
)

// String names the frame type as docs/stdio_mux_v1.md does.
func (t Type) String() string {
	switch t {
	case TypeStdin:
		return "stdin"
	case TypeStdout:
		return "stdout"
	case TypeStderr:
		return "stderr"
	case TypeControl:
		return "control"
	case TypeExit:
		return "exit"
	}
	return fmt.Sprintf("frame(%d)", byte(t))
}

// MaxPayload bounds one frame's payload.
const MaxPayload = 1 << 20

const headerSize = 5 // type, then the payload length as a big-endian uint32

// Control is the payload of a Control frame.
type Control struct {
	Op string `json:"op"`
	// hello (daemon to client, the first frame)
	Protocol string       `json:"protocol,omitempty"`
	Stdin    bool         `json:"stdin,omitempty"` // the process takes input
	Session  *api.Session `json:"session,omitempty"`
	// signal (client to daemon)
	Signal string `json:"signal,omitempty"`
	// resize (client to daemon)
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// Control operations.
const (
	OpHello  = "hello"  // daemon: what the client is connected to
	OpEOF    = "eof"    // client: close the process's stdin after what was sent
	OpDetach = "detach" // client: stop the bridge; a session keeps running, an exec is killed
	OpSignal = "signal" // client: send Signal ("INT", "TERM", ...) to the process (group)
	OpResize = "resize" // client: set the terminal of an exec with a TTY to Rows x Cols
)

// End is the payload of the Exit frame: how the bridge ended.
type End struct {
	Exit     *api.ExitStatus `json:"exit,omitempty"`     // the process ended
	Detached bool            `json:"detached,omitempty"` // the bridge ended, the session runs on
	Error    *api.Error      `json:"error,omitempty"`    // the bridge failed
}

// ErrMalformed means the peer sent something that is not stdio_mux_v1.
var ErrMalformed = errors.New("malformed stdio_mux_v1 frame")

// WriteFrame writes one frame (payload at most MaxPayload) with one Write.
func WriteFrame(w io.Writer, t Type, p []byte) error {
	if len(p) > MaxPayload {
		return fmt.Errorf("%w: %d byte payload exceeds %d", ErrMalformed, len(p), MaxPayload)
	}
	buf := make([]byte, headerSize+len(p))
	buf[0] = byte(t)
	binary.BigEndian.PutUint32(buf[1:], uint32(len(p)))
	copy(buf[headerSize:], p)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame into buf (grown when short). io.EOF means the
// stream ended cleanly between frames.
func ReadFrame(r io.Reader, buf []byte) (Type, []byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: truncated header", ErrMalformed)
		}
		return 0, nil, err
	}
	t := Type(hdr[0])
	if t > TypeExit {
		return 0, nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, hdr[0])
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("%w: length %d exceeds %d", ErrMalformed, n, MaxPayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated %s payload", ErrMalformed, t)
	}
	return t, buf, nil
}

// Writer serialises frames from several goroutines onto one stream.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends p as frames of type t, split at MaxPayload.
func (fw *Writer) Write(t Type, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		n := min(len(p), MaxPayload)
		if err := WriteFrame(fw.w, t, p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// WriteJSON sends v as one frame of type t.
func (fw *Writer) WriteJSON(t Type, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s frame: %w", t, err)
	}
	return fw.Write(t, b)
}

// Stream is an io.Writer sending everything as frames of type t.
func (fw *Writer) Stream(t Type) io.Writer { return stream{fw, t} }

type stream struct {
	fw *Writer
	t  Type
}

func (s stream) Write(p []byte) (int, error) {
	if err := s.fw.Write(s.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
