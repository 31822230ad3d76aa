package mcpserver

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Output bounds: what a tool returns of a guest's stdout, stderr, logs or
// files by default, and the most a call may ask for.
const (
	defaultOutputBytes = 64 << 10
	maxOutputBytes     = 1 << 20
)

// outputLimit turns a requested limit into one within bounds.
func outputLimit(asked int) int {
	switch {
	case asked <= 0:
		return defaultOutputBytes
	case asked > maxOutputBytes:
		return maxOutputBytes
	}
	return asked
}

// headBuffer keeps the first limit bytes written to it and counts the
// rest, so a guest that floods its output costs no memory.
type headBuffer struct {
	limit   int
	buf     []byte
	dropped int64
}

func (b *headBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

// Text is what was kept as valid UTF-8, with a marker saying how much was
// left out.
func (b *headBuffer) Text() string {
	s := cleanText(b.buf)
	if b.dropped > 0 {
		s += fmt.Sprintf("\n[banger: output truncated: %d more bytes not shown]", b.dropped)
	}
	return s
}

// Truncated reports whether bytes were left out.
func (b *headBuffer) Truncated() bool { return b.dropped > 0 }

// tailBuffer keeps the last limit bytes written to it (logs: the end is
// what an agent wants).
type tailBuffer struct {
	limit   int
	buf     []byte
	dropped int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.limit {
		b.dropped += int64(len(b.buf) + len(p) - b.limit)
		b.buf = append(b.buf[:0], p[len(p)-b.limit:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.limit; over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// Text is what was kept as valid UTF-8, after a marker saying how much
// came before it.
func (b *tailBuffer) Text() string {
	buf := b.buf
	if b.dropped > 0 {
		// Drop a rune cut in two by the window.
		for i := 0; i < utf8.UTFMax && i < len(buf) && !utf8.RuneStart(buf[0]); i++ {
			buf = buf[1:]
		}
		return fmt.Sprintf("[banger: output truncated: %d earlier bytes not shown]\n", b.dropped) + cleanText(buf)
	}
	return cleanText(buf)
}

// Truncated reports whether bytes were left out.
func (b *tailBuffer) Truncated() bool { return b.dropped > 0 }

// cleanText makes guest bytes valid UTF-8: invalid sequences become
// U+FFFD. Control characters stay as they are: JSON escapes them, and
// agents read text, not terminals.
func cleanText(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
