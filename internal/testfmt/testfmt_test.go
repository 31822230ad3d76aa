package testfmt

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFormatLikePlainGoTest: a real 'go test -json' stream (testdata:
// a failing subtest, a package without tests, a passing one and one that
// does not build) prints what plain 'go test' prints: summary lines,
// the build error, every line of the failing tests and the closing FAIL.
func TestFormatLikePlainGoTest(t *testing.T) {
	in, err := os.Open("testdata/mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	failed, err := Format(in, &out, Options{})
	if err != nil || !failed {
		t.Fatalf("Format = %v, %v; want failed", failed, err)
	}
	want := strings.Join([]string{
		"# tf/d [tf/d.test]",
		"d/d_test.go:3:30: undefined: undefined",
		"?   \ttf/b\t[no test files]",
		"ok  \ttf/c\t(cached)",
		"FAIL\ttf/d [build failed]",
		"=== RUN   TestSub",
		"=== RUN   TestSub/x",
		"    a_test.go:4: sub log",
		"    a_test.go:4: sub broke",
		"--- FAIL: TestSub/x (0.00s)",
		"--- FAIL: TestSub (0.00s)",
		"FAIL",
		"FAIL\ttf/a\t0.012s",
		"FAIL",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if strings.Contains(out.String(), "quiet") {
		t.Error("a passing test's log was printed")
	}
}

func TestFormatAllPassing(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}
{"Action":"pass","Package":"p"}
not json: passed through
`
	var out bytes.Buffer
	failed, err := Format(strings.NewReader(in), &out, Options{})
	if err != nil || failed {
		t.Fatalf("Format = %v, %v", failed, err)
	}
	if got := out.String(); got != "ok  \tp\t0.01s\nnot json: passed through\n" {
		t.Errorf("output = %q", got)
	}
}

// TestStatusLines: while packages run, the status names the longest
// running ones with their times; in a log it is printed once the output
// has been quiet long enough, on a terminal it is redrawn in place and
// cleared before the next result.
func TestStatusLines(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	newF := func(o Options) (*formatter, *bytes.Buffer) {
		var out bytes.Buffer
		o.Clock = clock
		f := &formatter{w: &out, o: o, running: map[string]*pkgState{}, builds: map[string][]string{}, begin: now, last: now}
		return f, &out
	}

	f, out := newF(Options{Quiet: time.Minute})
	now = now.Add(30 * time.Second)
	f.tick()
	if out.Len() != 0 {
		t.Errorf("status after 30s of quiet: %q; want none yet", out)
	}
	now = now.Add(40 * time.Second)
	f.tick()
	if got := out.String(); !strings.Contains(got, "building and starting test binaries (1m10s so far") {
		t.Errorf("status before any package started = %q", got)
	}
	out.Reset()
	f.handle([]byte(`{"Action":"start","Package":"slow"}`))
	now = now.Add(5 * time.Second)
	f.handle([]byte(`{"Action":"start","Package":"b"}`))
	f.handle([]byte(`{"Action":"start","Package":"a"}`))
	f.handle([]byte(`{"Action":"start","Package":"c"}`))
	now = now.Add(2 * time.Minute)
	f.tick()
	if got, want := out.String(), "... running slow 2m5s, a 2m0s, b 2m0s and 1 more (3m15s in all)\n"; got != want {
		t.Errorf("status = %q, want %q", got, want)
	}

	f, out = newF(Options{Live: true, Width: 20})
	f.handle([]byte(`{"Action":"start","Package":"p"}`))
	f.tick()
	if got := out.String(); strings.Contains(got, "\n") || len(got) != 19 {
		t.Errorf("live status = %q; want one line cut to 19 columns", got)
	}
	f.handle([]byte(`{"Action":"output","Package":"p","Output":"ok  \tp\t0.01s\n"}`))
	f.handle([]byte(`{"Action":"pass","Package":"p"}`))
	if got := out.String(); !strings.HasSuffix(got, "\r\033[Kok  \tp\t0.01s\n") {
		t.Errorf("output after the live line = %q; want it cleared before the result", got)
	}
}
