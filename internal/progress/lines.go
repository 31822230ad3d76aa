package progress

import (
	"bytes"
	"strings"
	"sync"

	"banger/api"
)

// LineWriter turns a command's output into events, one per line (step
// set, the line as message), and keeps the last TailLines lines for an
// error message. It is safe for concurrent use (stdout and stderr).
type LineWriter struct {
	f    Func
	step string
	mu   sync.Mutex
	buf  []byte
	tail []string
}

// TailLines is how many lines Tail keeps.
const TailLines = 20

// NewLineWriter returns a LineWriter emitting to f.
func NewLineWriter(f Func, step string) *LineWriter { return &LineWriter{f: f, step: step} }

func (w *LineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexAny(w.buf, "\n\r")
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a very long line
		w.line(string(w.buf))
		w.buf = nil
	}
	return len(b), nil
}

func (w *LineWriter) line(s string) {
	s = strings.TrimRight(s, " \t")
	if s == "" {
		return
	}
	w.f.Emit(api.Event{Step: w.step, Message: s})
	w.tail = append(w.tail, s)
	if len(w.tail) > TailLines {
		w.tail = w.tail[len(w.tail)-TailLines:]
	}
}

// Flush emits a last unterminated line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// Tail is the last lines written.
func (w *LineWriter) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}
