package agentproto

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"banger/api/errdefs"
)

// ProtocolVersion is the version this build speaks, "MAJOR.MINOR". Peers
// with the same major interoperate; a minor bump only adds calls or fields.
const ProtocolVersion = "1.1"

// Where the agent lives and listens inside a guest.
const (
	// DefaultVsockPort is the AF_VSOCK port the agent listens on.
	DefaultVsockPort uint32 = 1024
	// SerialPortName is the virtio-serial port name (QEMU virtserialport name=).
	SerialPortName = "org.banger.agent"
	// GuestBinaryPath is where image injection puts the agent binary.
	GuestBinaryPath = "/usr/local/lib/banger/banger-vsock-agent"
	// GuestUnitPath is where image injection puts internal/agent/banger-agent.service.
	GuestUnitPath = "/etc/systemd/system/banger-agent.service"
	// GuestAuthorizedKeyPath is the file the host may inject with its public key.
	GuestAuthorizedKeyPath = "/etc/banger/authorized_key"
)

// Limits every peer enforces on what it reads.
const (
	MaxHeaderSize   = 16 << 20 // one header or reply line, put_files content included
	MaxFramePayload = 1 << 20  // one frame's payload
)

// Call names, the Header.Call of each stream.
const (
	CallHello         = "hello"
	CallInfo          = "info"
	CallExec          = "exec"
	CallStdin         = "stdin"
	CallCopyIn        = "copy_in"
	CallCopyOut       = "copy_out"
	CallPutFiles      = "put_files"
	CallAuthorizeKey  = "authorize_key"
	CallHostKey       = "host_key"
	CallPorts         = "ports"
	CallStats         = "stats"
	CallShutdown      = "shutdown"
	CallSessionStart  = "session_start"
	CallSessionList   = "session_list"
	CallSessionLogs   = "session_logs"
	CallSessionAttach = "session_attach"
	CallSessionStop   = "session_stop"
	CallSessionKill   = "session_kill"
	CallSessionRemove = "session_remove"
	CallSetClock      = "set_clock"  // since 1.1
	CallReseed        = "reseed"     // since 1.1
	CallReidentify    = "reidentify" // since 1.1
	CallDial          = "dial"       // since 1.1
)

// Header is the first line the host writes on a stream.
type Header struct {
	Call string          `json:"call"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Reply is the first line the guest writes on a stream.
type Reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is a failed call on the wire; Kind maps to an errdefs sentinel.
type Error struct {
	Kind    errdefs.Kind `json:"kind"`
	Message string       `json:"message"`
}

// Err rebuilds a Go error so errors.Is(err, errdefs.ErrConflict) and friends
// hold on the host.
func (e *Error) Err() error { return errdefs.FromKind(e.Kind, e.Message) }

// WireError converts err for the wire; nil stays nil.
func WireError(err error) *Error {
	if err == nil {
		return nil
	}
	return &Error{Kind: errdefs.KindOf(err), Message: err.Error()}
}

// Hello is both the argument and the result of the hello call.
type Hello struct {
	Protocol string `json:"protocol"`           // ProtocolVersion of the sender
	Software string `json:"software,omitempty"` // build version of the sender
}

// CheckCompatible reports whether a peer speaking version peer can talk to
// this build. Only the major number matters.
func CheckCompatible(peer string) error {
	mine, _ := parseMajor(ProtocolVersion)
	theirs, err := parseMajor(peer)
	if err != nil {
		return errdefs.Invalid("agent protocol version %q is malformed", peer)
	}
	if theirs != mine {
		return errdefs.Unsupported("agent protocol %s is incompatible with %s (major versions differ); "+
			"install the agent from the same banger release into the image", peer, ProtocolVersion)
	}
	return nil
}

func parseMajor(v string) (int, error) {
	major, _, _ := strings.Cut(v, ".")
	return strconv.Atoi(major)
}

// parseMinor is the minor number of a "MAJOR.MINOR" version; a version
// without one is minor 0.
func parseMinor(v string) int {
	_, minor, ok := strings.Cut(v, ".")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(minor)
	if err != nil {
		return 0
	}
	return n
}

// WriteLine writes v as one JSON line.
func WriteLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding line: %w", err)
	}
	if len(b) >= MaxHeaderSize {
		return errdefs.Invalid("request of %d bytes exceeds the %d byte limit", len(b), MaxHeaderSize)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ErrLineTooLong is returned by ReadLine for a line over the limit.
var ErrLineTooLong = errors.New("line too long")

// ReadLine reads one newline-terminated JSON line of at most max bytes into v.
func ReadLine(br *bufio.Reader, max int, v any) error {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return ErrLineTooLong
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding line: %w", err)
	}
	return nil
}

// EncodeArgs marshals call arguments for a Header.
func EncodeArgs(args any) (json.RawMessage, error) {
	if args == nil {
		return nil, nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encoding arguments: %w", err)
	}
	return b, nil
}

// GuestUnit is the systemd unit that runs the agent in images that boot
// systemd; it is written to GuestUnitPath.
//
//go:embed banger-agent.service
var GuestUnit string
