// Package progress carries progress events from long operations to
// whoever watches them (the API stream, a terminal, nothing).
package progress

import (
	"io"
	"sync"
	"time"

	"banger/api"
)

// Func receives events. A nil Func discards them.
type Func func(api.Event)

// Emit sends ev to f when f is set, stamping the time.
func (f Func) Emit(ev api.Event) {
	if f == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	f(ev)
}

// Step reports the start of a named step.
func (f Func) Step(step, msg string) { f.Emit(api.Event{Step: step, Message: msg}) }

// Interval is the minimum gap between two byte-count events for one item.
const Interval = 100 * time.Millisecond

// Counter counts bytes for one item and emits throttled events.
// It is safe for concurrent use.
type Counter struct {
	f     Func
	step  string
	item  string
	total int64

	mu   sync.Mutex
	cur  int64
	last time.Time
}

// NewCounter starts counting item of total bytes (0 if unknown).
func NewCounter(f Func, step, item string, total int64) *Counter {
	return &Counter{f: f, step: step, item: item, total: total}
}

// Add records n more bytes.
func (c *Counter) Add(n int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.cur += n
	now := time.Now()
	emit := now.Sub(c.last) >= Interval
	if emit {
		c.last = now
	}
	cur := c.cur
	c.mu.Unlock()
	if emit {
		c.f.Emit(api.Event{Time: now, Step: c.step, Item: c.item, Current: cur, Total: c.total})
	}
}

// Set moves the count to n (for resumed work).
func (c *Counter) Set(n int64) {
	c.mu.Lock()
	c.cur = n
	c.mu.Unlock()
}

// Done emits the final event for the item.
func (c *Counter) Done() {
	if c == nil {
		return
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	c.f.Emit(api.Event{Step: c.step, Item: c.item, Current: cur, Total: c.total, Done: true})
}

// Writer wraps w and counts what is written through it.
func (c *Counter) Writer(w io.Writer) io.Writer { return &countWriter{w: w, c: c} }

// Reader wraps r and counts what is read through it.
func (c *Counter) Reader(r io.Reader) io.Reader { return &countReader{r: r, c: c} }

type countWriter struct {
	w io.Writer
	c *Counter
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.c.Add(int64(n))
	return n, err
}

type countReader struct {
	r io.Reader
	c *Counter
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.Add(int64(n))
	return n, err
}
