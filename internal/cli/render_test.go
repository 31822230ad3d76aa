package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/api"
)

// screen replays what a progressView wrote as a terminal shows it: the
// finished lines, and the live line being redrawn (\r\033[K clears it).
// Runs of spaces are squeezed so column padding does not matter.
func screen(out string) (lines []string, live string) {
	out = strings.ReplaceAll(out, "\r\033[K", "\r")
	var cur strings.Builder
	for _, r := range out {
		switch r {
		case '\r':
			cur.Reset()
		case '\n':
			lines = append(lines, squeeze(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return lines, squeeze(cur.String())
}

func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestProgressView(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	const mib = 1 << 20
	ev := func(step, item string, sec float64, cur, total int64, done bool) api.Event {
		return api.Event{Time: at(sec), Step: step, Item: item, Current: cur, Total: total, Done: done}
	}
	tests := []struct {
		name      string
		events    []api.Event
		wantLines []string
		wantLive  string
	}{{
		// Download and unpack count the same item; the unpack rate is
		// timed from the unpack's own start, not the download's.
		name: "unpack rate from its own start",
		events: []api.Event{
			ev("download", "0123456789ab", 0, 0, 100*mib, false),
			ev("download", "0123456789ab", 10, 100*mib, 100*mib, true),
			ev("unpack", "0123456789ab", 10, 0, 100*mib, false),
			ev("unpack", "0123456789ab", 11, 50*mib, 100*mib, false),
		},
		wantLines: []string{"download 0123456789ab 100.0 MiB / 100.0 MiB 100% 10.0 MiB/s"},
		wantLive:  "unpack 0123456789ab 50.0 MiB / 100.0 MiB 50% 50.0 MiB/s",
	}, {
		name: "unpack done",
		events: []api.Event{
			ev("download", "0123456789ab", 0, 0, 100*mib, false),
			ev("download", "0123456789ab", 10, 100*mib, 100*mib, true),
			{Time: at(10), Step: "unpack", Message: "unpacking 1 layer(s)"},
			ev("unpack", "0123456789ab", 10, 0, 100*mib, false),
			ev("unpack", "0123456789ab", 12, 100*mib, 100*mib, true),
		},
		wantLines: []string{
			"download 0123456789ab 100.0 MiB / 100.0 MiB 100% 10.0 MiB/s",
			"==> unpacking 1 layer(s)",
			"unpack 0123456789ab 100.0 MiB / 100.0 MiB 100% 50.0 MiB/s",
		},
	}, {
		// Layers downloading at once share the live line as one sum; each
		// gets its own line when done.
		name: "concurrent downloads",
		events: []api.Event{
			ev("download", "aaaaaaaaaaaa", 0, 0, 10*mib, false),
			ev("download", "bbbbbbbbbbbb", 0, 0, 30*mib, false),
			ev("download", "aaaaaaaaaaaa", 1, 5*mib, 10*mib, false),
			ev("download", "bbbbbbbbbbbb", 1, 10*mib, 30*mib, false),
			ev("download", "cccccccccccc", 1, 0, 0, false),
		},
		wantLive: "download 3 items 15.0 MiB 15.0 MiB/s", // c's size is unknown
	}, {
		name: "concurrent downloads, one done",
		events: []api.Event{
			ev("download", "aaaaaaaaaaaa", 0, 0, 10*mib, false),
			ev("download", "bbbbbbbbbbbb", 0, 0, 30*mib, false),
			ev("download", "aaaaaaaaaaaa", 2, 10*mib, 10*mib, true),
			ev("download", "bbbbbbbbbbbb", 2, 20*mib, 30*mib, false),
		},
		wantLines: []string{"download aaaaaaaaaaaa 10.0 MiB / 10.0 MiB 100% 5.0 MiB/s"},
		wantLive:  "download bbbbbbbbbbbb 20.0 MiB / 30.0 MiB 66% 10.0 MiB/s",
	}, {
		name: "a log line keeps the live line",
		events: []api.Event{
			ev("copy", "rootfs", 0, 0, 4*mib, false),
			{Time: at(1), Step: "log", Message: "hello"},
			ev("copy", "rootfs", 1, 2*mib, 4*mib, false),
		},
		wantLines: []string{"hello"},
		wantLive:  "copy rootfs 2.0 MiB / 4.0 MiB 50% 2.0 MiB/s",
	}, {
		// A counter a step left unfinished is printed as it stood.
		name: "new step ends unfinished counters",
		events: []api.Event{
			ev("copy", "rootfs", 0, 0, 4*mib, false),
			ev("copy", "rootfs", 1, 1*mib, 4*mib, false),
			{Time: at(1), Step: "boot", Message: "booting"},
		},
		wantLines: []string{"copy rootfs 1.0 MiB / 4.0 MiB 25% 1.0 MiB/s", "==> booting"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := &progressView{w: &buf, enabled: true} // a terminal
			for _, e := range tt.events {
				p.Event(e)
			}
			lines, live := screen(buf.String())
			if diff := cmp.Diff(tt.wantLines, lines); diff != "" {
				t.Errorf("finished lines (-want +got):\n%s", diff)
			}
			if live != tt.wantLive {
				t.Errorf("live line = %q, want %q", live, tt.wantLive)
			}
			p.Close()
			if lines, live := screen(buf.String()); live != "" || len(lines) < len(tt.wantLines) {
				t.Errorf("after Close: lines %q, live %q; want every line finished", lines, live)
			}
		})
	}
}

// Piped output gets no progress at all.
func TestProgressViewNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressView(&buf)
	p.Event(api.Event{Time: time.Now(), Step: "download", Item: "x", Current: 1, Total: 2})
	p.Event(api.Event{Step: "fetch", Message: "pulling"})
	p.Close()
	if buf.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal", buf.String())
	}
}

// The live line never wraps: a wrapped line cannot be redrawn in place.
func TestProgressViewWidth(t *testing.T) {
	var buf bytes.Buffer
	p := &progressView{w: &buf, enabled: true, width: 40}
	p.Event(api.Event{Time: time.Now(), Step: "download", Item: "a-rather-long-item-name", Current: 1 << 20, Total: 2 << 20})
	if _, live := screen(buf.String()); len(live) >= 40 {
		t.Errorf("live line %q is %d columns, want < 40", live, len(live))
	}
}

// TestProgressViewElapsed: a step with no counter shows its elapsed time
// on the live line once it has run a while; a counter takes the line
// over, and a new step starts the clock again.
func TestProgressViewElapsed(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &progressView{w: &buf, enabled: true, clock: func() time.Time { return now }}
	p.Event(api.Event{Time: now, Step: "agent", Message: "waiting for the guest agent"})
	p.tick()
	if _, live := screen(buf.String()); live != "" {
		t.Errorf("live line right after the step = %q; want none", live)
	}
	now = now.Add(43*time.Second + 300*time.Millisecond)
	p.tick()
	lines, live := screen(buf.String())
	if live != "43s elapsed" || len(lines) != 1 || lines[0] != "==> waiting for the guest agent" {
		t.Errorf("after 43s: lines %q, live %q; want the step and \"43s elapsed\"", lines, live)
	}
	p.Event(api.Event{Time: now, Step: "log", Message: "agent: hello"})
	if _, live := screen(buf.String()); live != "43s elapsed" {
		t.Errorf("live line after a log line = %q; want it redrawn", live)
	}
	now = now.Add(2 * time.Minute)
	p.tick()
	if _, live := screen(buf.String()); live != "2m43s elapsed" {
		t.Errorf("live line = %q; want 2m43s elapsed", live)
	}
	p.Event(api.Event{Time: now, Step: "copy", Message: "copying"})
	p.tick()
	if _, live := screen(buf.String()); live != "" {
		t.Errorf("live line right after a new step = %q; want the clock restarted", live)
	}
	p.Close()
	if _, live := screen(buf.String()); live != "" {
		t.Errorf("live line after Close = %q", live)
	}
}

// TestProgressViewTickerStops: the ticker a terminal view starts ends
// with Close.
func TestProgressViewTickerStops(t *testing.T) {
	p := &progressView{w: io.Discard, enabled: true, stop: make(chan struct{}), done: make(chan struct{})}
	go p.ticker()
	p.Event(api.Event{Step: "boot", Message: "booting"})
	p.Close()
	select {
	case <-p.done:
	default:
		t.Error("the ticker still runs after Close")
	}
}
