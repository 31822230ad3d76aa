package hostileguest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// Escapes is a string a hostile guest puts wherever the host may show text:
// it retitles the terminal, clears it, moves the cursor and rings the bell.
const Escapes = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[31mfake prompt$ \x1b[0m\r\x08\x00\u009b"

// Reply answers with result, as a well-formed reply line.
func Reply(result any) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		return writeRaw(st, append(append([]byte(`{"result":`), b...), '}'))
	}
}

// ErrorReply answers with an error of kind carrying message.
func ErrorReply(kind errdefs.Kind, message string) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		b, err := json.Marshal(agentproto.Reply{Error: &agentproto.Error{Kind: kind, Message: message}})
		if err != nil {
			return err
		}
		return writeRaw(st, b)
	}
}

// RawLine answers with line as the reply, a newline added: malformed JSON,
// or a reply far over any limit.
func RawLine(line []byte) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		return writeRaw(st, line)
	}
}

// Oversized answers with a well-formed reply of about n bytes: one string
// result of n bytes.
func Oversized(n int) Handler {
	return RawLine([]byte(`{"result":"` + strings.Repeat("A", n) + `"}`))
}

// Silent reads the header and never answers until the host gives up.
func Silent() Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		<-ctx.Done()
		return ctx.Err()
	}
}

// Slow answers with next after d, or not at all when ctx ends first.
func Slow(d time.Duration, next Handler) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		return next(ctx, h, st)
	}
}

// Frames answers with an empty result, then frames of type t carrying
// each of chunks, then an End frame carrying end.
func Frames(t agentproto.FrameType, end agentproto.End, chunks ...[]byte) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		if err := writeRaw(st, []byte(`{"result":{}}`)); err != nil {
			return err
		}
		fw := agentproto.NewFrameWriter(st)
		for _, c := range chunks {
			if err := fw.Write(t, c); err != nil {
				return err
			}
		}
		return fw.WriteJSON(agentproto.FrameEnd, end)
	}
}

// Flood answers with an empty result, then frames of type t carrying chunk
// until the host closes the stream or ctx ends.
func Flood(t agentproto.FrameType, chunk []byte) Handler {
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		if err := writeRaw(st, []byte(`{"result":{}}`)); err != nil {
			return err
		}
		fw := agentproto.NewFrameWriter(st)
		for ctx.Err() == nil {
			if err := fw.Write(t, chunk); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
}

// writeRaw writes line and a newline without copying line, so a large
// reply shared by many calls costs the guest nothing per call.
func writeRaw(w io.Writer, line []byte) error {
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("writing reply: %w", err)
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("writing reply: %w", err)
	}
	return nil
}

// HugeStats is a stats result with disks disks and as many interfaces,
// every name nameLen bytes long (each distinct, so nothing is shared).
func HugeStats(disks, nameLen int) agentproto.Stats {
	s := agentproto.Stats{Time: time.Now(), Uptime: 100, CPU: agentproto.CPUStats{Count: 1, User: 1, Idle: 1}}
	for i := range disks {
		name := fmt.Sprintf("%08d", i) + strings.Repeat("d", max(nameLen-8, 0))
		s.Disks = append(s.Disks, agentproto.Disk{Device: "/dev/" + name, Mount: "/" + name, FSType: name, Total: 1 << 30})
		s.Networks = append(s.Networks, agentproto.NetIf{Name: name})
	}
	return s
}

// StatsLine is a reply line carrying HugeStats(disks, nameLen), built once
// to be sent many times with RawLine.
func StatsLine(disks, nameLen int) []byte {
	b, err := json.Marshal(HugeStats(disks, nameLen))
	if err != nil {
		panic(err)
	}
	return ResultLine(b)
}

// StatsFlood answers stats like HugeStats(disks, nameLen), with a fresh
// time and growing counters on every call so each reply is a new sample.
func StatsFlood(disks, nameLen int) Handler {
	base := HugeStats(disks, nameLen)
	var calls atomic.Uint64
	return func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		n := calls.Add(1)
		s := base
		s.Time, s.Uptime = time.Now(), float64(100+n)
		s.CPU.User, s.CPU.Idle = 10*n, 10*n
		return Reply(s)(ctx, h, st)
	}
}

// Many is a JSON array of n copies of elem: a reply of many tiny elements.
func Many(n int, elem string) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(elem)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// ResultLine wraps a raw JSON result into a reply line.
func ResultLine(result []byte) []byte {
	return append(append([]byte(`{"result":`), result...), '}')
}
