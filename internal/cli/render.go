package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"banger/api"
	"banger/internal/bytesize"
)

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; the first row is the header. Cells are
// escaped (safe): they hold names, commands and errors from guests and
// registries, and a tab or newline in one would break the columns too.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cells := make([]string, 0, 8)
	for _, r := range rows {
		cells = cells[:0]
		for _, c := range r {
			cells = append(cells, safe(c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// progressView draws progress events on a terminal: step messages as
// lines, byte counters on one line redrawn in place. Items counted at the
// same time (layers downloading in parallel) share that line as one
// summary per step; each item gets a line of its own when it is done.
// When the output is not a terminal it draws nothing, so piped output
// stays clean.
//
// A step that runs for a while with no counter (booting, waiting for the
// guest agent, a build) shows its elapsed time on the live line, redrawn
// every second, so a long wait is not a silent one.
type progressView struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	width   int             // terminal columns; 0 when unknown
	active  []*itemProgress // counters in flight, in order of their first event
	open    bool            // the live line is drawn
	// stepAt is when the current step began on this side's clock (zero:
	// no step yet); clock is that clock, time.Now when nil.
	stepAt     time.Time
	clock      func() time.Time
	stop, done chan struct{} // the ticker redrawing the elapsed time
}

// elapsedAfter is how long a step runs before its elapsed time shows.
const elapsedAfter = 2 * time.Second

// itemProgress is one counter: an item within a step. Download and unpack
// count the same layer, so the step is part of its identity.
type itemProgress struct {
	step, item string
	cur, total int64
	start      time.Time // first event, the base of the rate
	last       time.Time
}

func newProgressView(w io.Writer) *progressView {
	p := &progressView{w: w, enabled: isTTY(w)}
	if p.enabled {
		p.width, _, _ = term.GetSize(int(w.(*os.File).Fd()))
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.ticker()
	}
	return p
}

// ticker redraws the live line every second until Close.
func (p *progressView) ticker() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.tick()
		}
	}
}

// tick redraws the elapsed time of a step that has no counter in flight.
func (p *progressView) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.active) > 0 || p.stepAt.IsZero() {
		return
	}
	p.clearLive()
	p.drawLive()
}

func (p *progressView) now() time.Time {
	if p.clock != nil {
		return p.clock()
	}
	return time.Now()
}

// Event is the callback handed to streamed client calls.
func (p *progressView) Event(ev api.Event) {
	if !p.enabled || ev.Step == "start" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Item == "" {
		if ev.Message == "" {
			return
		}
		p.clearLive()
		if ev.Step == "log" { // a line of a command's output
			fmt.Fprintf(p.w, "    %s\n", safe(ev.Message))
		} else {
			p.flush() // a new step: counters of the last one are over
			fmt.Fprintf(p.w, "==> %s\n", safe(ev.Message))
			p.stepAt = p.now()
		}
		p.drawLive()
		return
	}
	it := p.item(ev)
	it.cur, it.total, it.last = ev.Current, ev.Total, ev.Time
	if ev.Done {
		p.clearLive()
		p.active = slices.DeleteFunc(p.active, func(a *itemProgress) bool { return a == it })
		fmt.Fprintf(p.w, "    %s\n", it.line())
	}
	p.drawLive()
}

// item finds or starts the counter ev belongs to.
func (p *progressView) item(ev api.Event) *itemProgress {
	for _, it := range p.active {
		if it.step == ev.Step && it.item == ev.Item {
			return it
		}
	}
	it := &itemProgress{step: ev.Step, item: ev.Item, start: ev.Time}
	p.active = append(p.active, it)
	return it
}

// Close stops the ticker and finishes a line left open.
func (p *progressView) Close() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	p.flush()
	p.stepAt = time.Time{}
}

// flush prints the counters still in flight as they stand and forgets
// them.
func (p *progressView) flush() {
	for _, it := range p.active {
		fmt.Fprintf(p.w, "    %s\n", it.line())
	}
	p.active = nil
}

func (p *progressView) clearLive() {
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
}

// drawLive redraws the live line: the counter in flight or, when several
// are, one sum per step.
func (p *progressView) drawLive() {
	var line string
	if len(p.active) == 0 {
		d := p.now().Sub(p.stepAt)
		if p.stepAt.IsZero() || d < elapsedAfter {
			return
		}
		line = "    " + d.Truncate(time.Second).String() + " elapsed"
	} else {
		var parts []string
		for _, it := range p.perStep() {
			parts = append(parts, it.line())
		}
		line = "    " + strings.Join(parts, "  |  ")
	}
	if p.width > 1 && len(line) >= p.width {
		line = strings.ToValidUTF8(line[:p.width-1], "") // a wrapped line cannot be redrawn with \r
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.open = true
}

// perStep sums the active counters of each step into one pseudo-item
// ("3 items"), timed from the earliest start among them.
func (p *progressView) perStep() []*itemProgress {
	var sums []*itemProgress
	n := map[string]int{}
	for _, it := range p.active {
		i := slices.IndexFunc(sums, func(s *itemProgress) bool { return s.step == it.step })
		if i < 0 {
			c := *it
			sums = append(sums, &c)
			n[it.step] = 1
			continue
		}
		s := sums[i]
		n[it.step]++
		s.item = fmt.Sprintf("%d items", n[it.step])
		s.cur += it.cur
		if s.total > 0 && it.total > 0 {
			s.total += it.total
		} else {
			s.total = 0 // unknown
		}
		if it.start.Before(s.start) {
			s.start = it.start
		}
		if it.last.After(s.last) {
			s.last = it.last
		}
	}
	return sums
}

// line is the counter as step, item, bytes and rate, unindented.
func (it *itemProgress) line() string {
	return fmt.Sprintf("%-8s %-24s %s", safe(it.step), safe(it.item), counter(it.cur, it.total, it.last.Sub(it.start)))
}

func counter(cur, total int64, elapsed time.Duration) string {
	s := bytesize.Format(cur)
	if total > 0 {
		s = fmt.Sprintf("%s / %s %3d%%", s, bytesize.Format(total), cur*100/total)
	}
	if elapsed > 200*time.Millisecond {
		s += fmt.Sprintf("  %s/s", bytesize.Format(int64(float64(cur)/elapsed.Seconds())))
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
