package agentproto

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"banger/api/errdefs"
)

// FrameType tags a frame. The values match stdio_mux_v1's tags so the daemon
// can relay attach streams without translating them.
type FrameType byte

const (
	FrameStdin   FrameType = 0 // host to guest bytes (copy_in data)
	FrameStdout  FrameType = 1 // guest to host bytes: stdout, copy_out data, logs
	FrameStderr  FrameType = 2 // guest to host bytes: stderr
	FrameControl FrameType = 3 // host to guest JSON Control
	FrameEnd     FrameType = 4 // guest to host JSON End; always the last frame
)

func (t FrameType) String() string {
	switch t {
	case FrameStdin:
		return "stdin"
	case FrameStdout:
		return "stdout"
	case FrameStderr:
		return "stderr"
	case FrameControl:
		return "control"
	case FrameEnd:
		return "end"
	}
	return fmt.Sprintf("frame(%d)", byte(t))
}

const frameHeaderSize = 5 // 1 byte type + 4 bytes big-endian payload length

// Control is the payload of a FrameControl.
type Control struct {
	Op     string `json:"op"`               // ControlResize, ControlSignal, ControlEOF
	Rows   uint16 `json:"rows,omitempty"`   // resize
	Cols   uint16 `json:"cols,omitempty"`   // resize
	Signal string `json:"signal,omitempty"` // signal: "TERM", "INT", "KILL", ... or a number
}

// Control operations.
const (
	ControlResize = "resize"
	ControlSignal = "signal"
	ControlEOF    = "eof" // copy_in: no more data
)

// End is the payload of a FrameEnd.
type End struct {
	Exit  *ExitStatus `json:"exit,omitempty"`
	Copy  *CopyResult `json:"copy,omitempty"`
	Error *Error      `json:"error,omitempty"`
}

// WriteFrame writes one frame as a single Write.
func WriteFrame(w io.Writer, t FrameType, p []byte) error {
	if len(p) > MaxFramePayload {
		return errdefs.Invalid("frame of %d bytes exceeds the %d byte limit", len(p), MaxFramePayload)
	}
	buf := make([]byte, frameHeaderSize+len(p))
	buf[0] = byte(t)
	binary.BigEndian.PutUint32(buf[1:], uint32(len(p)))
	copy(buf[frameHeaderSize:], p)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame into buf (grown when too small) and returns its
// type and payload. An unknown type or oversized length is an error: the
// stream is then out of step and must be closed.
func ReadFrame(r io.Reader, buf []byte) (FrameType, []byte, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	t := FrameType(hdr[0])
	if t > FrameEnd {
		return 0, nil, errdefs.Invalid("malformed frame: unknown type %d", hdr[0])
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFramePayload {
		return 0, nil, errdefs.Invalid("malformed frame: length %d exceeds %d", n, MaxFramePayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("reading %s frame: %w", t, noEOF(err))
	}
	return t, buf, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// FrameWriter serialises frames from several goroutines onto one stream.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// Write sends p as frames of type t, split at MaxFramePayload.
func (fw *FrameWriter) Write(t FrameType, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		n := min(len(p), MaxFramePayload)
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
func (fw *FrameWriter) WriteJSON(t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s frame: %w", t, err)
	}
	return fw.Write(t, b)
}

// Stream returns an io.Writer that sends everything as frames of type t.
func (fw *FrameWriter) Stream(t FrameType) io.Writer { return frameStream{fw, t} }

type frameStream struct {
	fw *FrameWriter
	t  FrameType
}

func (s frameStream) Write(p []byte) (int, error) {
	if err := s.fw.Write(s.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
