package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"banger/internal/api"
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

// table writes aligned columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// progressView draws progress events on a terminal: step messages as
// lines, byte counters as one line redrawn in place. When the output is
// not a terminal it draws nothing, so piped output stays clean.
type progressView struct {
	w       io.Writer
	enabled bool
	started map[string]time.Time
	open    bool // a counter line is being redrawn
}

func newProgressView(w io.Writer) *progressView {
	return &progressView{w: w, enabled: isTTY(w), started: map[string]time.Time{}}
}

// Event is the callback handed to streamed client calls.
func (p *progressView) Event(ev api.Event) {
	if !p.enabled || ev.Step == "start" {
		return
	}
	if ev.Item == "" {
		if ev.Message != "" {
			p.endLine()
			if ev.Step == "log" { // a line of a command's output
				fmt.Fprintf(p.w, "    %s\n", ev.Message)
			} else {
				fmt.Fprintf(p.w, "==> %s\n", ev.Message)
			}
		}
		return
	}
	t0, ok := p.started[ev.Item]
	if !ok {
		t0 = ev.Time
		p.started[ev.Item] = t0
	}
	line := fmt.Sprintf("    %-8s %-24s %s", ev.Step, ev.Item, counter(ev.Current, ev.Total, ev.Time.Sub(t0)))
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.open = true
	if ev.Done {
		p.endLine()
	}
}

// Close finishes a line left open.
func (p *progressView) Close() { p.endLine() }

func (p *progressView) endLine() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
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
