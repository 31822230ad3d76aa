package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"banger/internal/daemon/daemontest"
	"banger/internal/server"
)

// exampleGuestDir is where ExampleClient_CopyIn writes: the fake VMM's
// guest is this host, so a temporary directory.
var exampleGuestDir string

// TestMain runs a real daemon with the fake VMM (internal/vmm/vmmfake)
// behind a real API server, at the socket client.DefaultSocket finds
// once XDG_RUNTIME_DIR points at a temporary directory, so the examples
// read as a program would be written and really run.
func TestMain(m *testing.M) {
	tb := &mainTB{}
	code := func() int {
		defer tb.close()
		w := daemontest.New(tb, nil)
		rt := tb.TempDir()
		if err := os.Mkdir(filepath.Join(rt, "banger"), 0o700); err != nil {
			tb.Fatal(err)
		}
		os.Setenv("XDG_RUNTIME_DIR", rt)
		exampleGuestDir = filepath.Join(tb.TempDir(), "copied")
		l, err := net.Listen("unix", filepath.Join(rt, "banger", "bangerd.sock"))
		if err != nil {
			tb.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, l) }()
		tb.Cleanup(func() { cancel(); <-done })
		return m.Run()
	}()
	os.Exit(code)
}

// mainTB lets TestMain build a daemontest.World before any test runs:
// a failure ends the process, a skip skips the whole package, cleanups
// run in reverse when TestMain is done. The embedded TB is nil, so a
// method daemontest does not use panics instead of passing silently.
type mainTB struct {
	testing.TB
	cleanups []func()
}

func (m *mainTB) Helper()          {}
func (m *mainTB) Cleanup(f func()) { m.cleanups = append(m.cleanups, f) }

func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "banger-example")
	if err != nil {
		m.Fatal(err)
	}
	m.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (m *mainTB) Fatal(args ...any) { m.exit(1, fmt.Sprint(args...)) }

func (m *mainTB) Fatalf(format string, args ...any) { m.exit(1, fmt.Sprintf(format, args...)) }

func (m *mainTB) Skipf(format string, args ...any) {
	m.exit(0, "skipping the client's tests and examples: "+fmt.Sprintf(format, args...))
}

func (m *mainTB) exit(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	m.close()
	os.Exit(code)
}

func (m *mainTB) close() {
	for i := len(m.cleanups) - 1; i >= 0; i-- {
		m.cleanups[i]()
	}
	m.cleanups = nil
}
