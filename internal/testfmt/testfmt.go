// Package testfmt turns the event stream of 'go test -json' back into
// what plain 'go test' prints (an "ok" or "?" line per package, the full
// output of failing tests, "FAIL" lines, build errors), and adds what
// plain 'go test' lacks on a long run: which packages are running and for
// how long. On a terminal that is a live line redrawn every second; in a
// log, a line after each stretch of silence.
package testfmt

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options tune Format.
type Options struct {
	// Live redraws a status line every second (w is a terminal), cut
	// to Width columns when Width is known.
	Live  bool
	Width int
	// Quiet is how long the output may stay silent before a status line
	// is printed when not Live; 0 means never.
	Quiet time.Duration
	// Clock is the time source; time.Now when nil.
	Clock func() time.Time
}

// event is one line of 'go test -json' (cmd/test2json's TestEvent, plus
// the build events 'go test' adds).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

type line struct{ test, text string }

type pkgState struct {
	start  time.Time
	lines  []line
	passed map[string]bool // tests that passed or skipped: their output is dropped
}

type formatter struct {
	mu       sync.Mutex
	w        io.Writer
	o        Options
	begin    time.Time
	last     time.Time // last line written
	running  map[string]*pkgState
	builds   map[string][]string // build output by import path
	failed   bool
	liveOpen bool
}

// Format copies the 'go test -json' stream r to w as described in the
// package comment, and reports whether any package failed. A line that is
// not JSON is passed through as it is.
func Format(r io.Reader, w io.Writer, o Options) (failed bool, err error) {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	f := &formatter{w: w, o: o, running: map[string]*pkgState{}, builds: map[string][]string{}}
	f.begin = o.Clock()
	f.last = f.begin
	stop, done := make(chan struct{}), make(chan struct{})
	go f.ticker(stop, done)
	defer func() {
		close(stop)
		<-done
		f.mu.Lock()
		f.clearLive()
		f.mu.Unlock()
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		f.handle(sc.Bytes())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed {
		f.print("FAIL\n")
	}
	return f.failed, sc.Err()
}

func (f *formatter) handle(raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e event
	if err := json.Unmarshal(raw, &e); err != nil || e.Action == "" {
		f.print(string(raw) + "\n")
		return
	}
	switch e.Action {
	case "build-output":
		f.builds[e.ImportPath] = append(f.builds[e.ImportPath], e.Output)
	case "build-fail":
		f.print(strings.Join(f.builds[e.ImportPath], ""))
		delete(f.builds, e.ImportPath)
	case "start":
		f.pkg(e.Package)
	case "output":
		p := f.pkg(e.Package)
		p.lines = append(p.lines, line{e.Test, e.Output})
	case "pass", "skip", "fail":
		if e.Test != "" {
			if e.Action != "fail" {
				f.pkg(e.Package).passed[e.Test] = true
			}
			return
		}
		f.done(e.Package, e.Action == "fail")
	}
}

func (f *formatter) pkg(name string) *pkgState {
	p := f.running[name]
	if p == nil {
		p = &pkgState{start: f.o.Clock(), passed: map[string]bool{}}
		f.running[name] = p
	}
	return p
}

// done prints a finished package as plain 'go test' would: a passing one
// by its summary line, a failing one with all the output of its failing
// tests and of the package itself.
func (f *formatter) done(name string, failed bool) {
	p := f.pkg(name)
	delete(f.running, name)
	var b strings.Builder
	for _, l := range p.lines {
		switch {
		case failed && !p.passed[l.test]:
			b.WriteString(l.text)
		case !failed && l.test == "" && l.text != "PASS\n":
			b.WriteString(l.text) // "ok  \tpkg\t1.2s", "?   \tpkg\t[no test files]"
		}
	}
	if failed {
		f.failed = true
	}
	f.print(b.String())
}

// print writes s, clearing the live line first. The caller holds mu.
func (f *formatter) print(s string) {
	if s == "" {
		return
	}
	f.clearLive()
	io.WriteString(f.w, s)
	f.last = f.o.Clock()
}

func (f *formatter) clearLive() {
	if f.liveOpen {
		io.WriteString(f.w, "\r\033[K")
		f.liveOpen = false
	}
}

func (f *formatter) ticker(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f.tick()
		}
	}
}

// tick shows what is running: redrawn in place when Live, else as a line
// once the output has been silent for Quiet.
func (f *formatter) tick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.o.Clock()
	status := f.status(now)
	switch {
	case f.o.Live:
		if f.o.Width > 1 && len(status) >= f.o.Width {
			status = status[:f.o.Width-1] // a wrapped line cannot be redrawn with \r
		}
		f.clearLive()
		io.WriteString(f.w, status)
		f.liveOpen = true
	case f.o.Quiet > 0 && now.Sub(f.last) >= f.o.Quiet:
		f.print(status + "\n")
	}
}

// status says what the run is doing now. The caller holds mu.
func (f *formatter) status(now time.Time) string {
	total := now.Sub(f.begin).Truncate(time.Second)
	if len(f.running) == 0 {
		return fmt.Sprintf("... building and starting test binaries (%s so far; minutes on a cold build cache)", total)
	}
	names := make([]string, 0, len(f.running))
	for n := range f.running {
		names = append(names, n)
	}
	// Longest running first: that is the one being waited for.
	sort.Slice(names, func(i, j int) bool {
		a, b := f.running[names[i]].start, f.running[names[j]].start
		return a.Before(b) || a.Equal(b) && names[i] < names[j]
	})
	var parts []string
	for _, n := range names[:min(3, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %s", n, now.Sub(f.running[n].start).Truncate(time.Second)))
	}
	more := ""
	if len(names) > 3 {
		more = fmt.Sprintf(" and %d more", len(names)-3)
	}
	return fmt.Sprintf("... running %s%s (%s in all)", strings.Join(parts, ", "), more, total)
}
