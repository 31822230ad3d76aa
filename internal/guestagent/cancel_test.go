package guestagent_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// hostLeaves are the two ways a host stops a call halfway: cancelling its
// context (the stream is closed) or losing the whole connection.
var hostLeaves = []struct {
	name  string
	leave func(cancel context.CancelFunc, c *agentproto.Client)
}{
	{"cancel", func(cancel context.CancelFunc, _ *agentproto.Client) { cancel() }},
	{"connection lost", func(_ context.CancelFunc, c *agentproto.Client) { c.Close() }},
}

// TestCopyInCancelledMidStream stops a copy_in halfway through a large
// file that replaces an existing one. Entries completed before stay, the
// one in flight is dropped with its temporary file, the old file is left
// as it was, and the agent keeps serving.
func TestCopyInCancelledMidStream(t *testing.T) {
	for _, tt := range hostLeaves {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, guestConfig())
			c := e.connect()
			dst := t.TempDir()
			os.WriteFile(filepath.Join(dst, "big.bin"), []byte("old contents"), 0o644)

			pr, pw := io.Pipe()
			halfway := make(chan struct{})
			go func() {
				tw := tar.NewWriter(pw)
				tw.WriteHeader(&tar.Header{Name: "small.txt", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
				io.WriteString(tw, "small")
				tw.WriteHeader(&tar.Header{Name: "big.bin", Mode: 0o644, Size: 64 << 20, Typeflag: tar.TypeReg})
				_, err := io.CopyN(tw, seededReader(2), 8<<20)
				close(halfway)
				if err == nil {
					_, err = io.CopyN(tw, seededReader(3), 56<<20) // until the copy gives up
				}
				pw.CloseWithError(err)
			}()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.CopyIn(ctx, dst, pr)
				pr.CloseWithError(errors.New("copy ended"))
				done <- err
			}()
			select {
			case <-halfway:
			case err := <-done:
				t.Fatalf("copy_in ended before the host left: %v", err)
			}
			waitFor(t, "the partial file to grow", 10*time.Second, func() bool { return tempSize(dst) > 0 })
			tt.leave(cancel, c)
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a copy_in stopped halfway succeeded")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("CopyIn did not return after the host left")
			}
			waitNoGoroutine(t, "guestagent.(*Server).copyIn")
			if left := temps(dst); len(left) > 0 {
				t.Errorf("temporary files left in the target: %v", left)
			}
			if got, _ := os.ReadFile(filepath.Join(dst, "big.bin")); string(got) != "old contents" {
				t.Errorf("big.bin after the stopped copy has %d bytes, want the old contents kept", len(got))
			}
			if got, _ := os.ReadFile(filepath.Join(dst, "small.txt")); string(got) != "small" {
				t.Errorf("small.txt = %q, want the entry completed before the stop", got)
			}

			// Other calls are still served, on a new connection if need be.
			if tt.name != "cancel" {
				c = e.connect()
			}
			ctx2 := testCtx(t, 10*time.Second)
			if _, err := c.CopyIn(ctx2, dst, tarOf(t, entry{hdr: tar.Header{Name: "big.bin", Mode: 0o600}, body: "new"})); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(dst, "big.bin")); string(got) != "new" {
				t.Errorf("big.bin after a full copy = %q, want new", got)
			}
		})
	}
}

// temps lists copy_in's temporary files in dir.
func temps(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".banger-copy-*"))
	return m
}

func tempSize(dir string) int64 {
	var n int64
	for _, p := range temps(dir) {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestSessionLogsFollowEndsWhenHostLeaves follows a session that runs on,
// with output pending or not, and stops halfway: the agent's handler must
// end at once rather than hold the stream, and other calls still work.
func TestSessionLogsFollowEndsWhenHostLeaves(t *testing.T) {
	for _, tt := range hostLeaves {
		for _, output := range []string{"quiet", "chatty"} {
			t.Run(tt.name+"/"+output, func(t *testing.T) {
				e := newEnv(t, guestConfig())
				c := e.connect()
				ctx := testCtx(t, 30*time.Second)
				script := "sleep 1000"
				if output == "chatty" {
					// More than the stream window, so the agent blocks
					// writing to a host that has stopped reading.
					script = "head -c 4000000 /dev/zero; sleep 1000"
				}
				if _, err := c.StartSession(ctx, agentproto.SessionStart{Name: "s", Argv: []string{"sh", "-c", script}}); err != nil {
					t.Fatal(err)
				}
				fctx, cancel := context.WithCancel(ctx)
				defer cancel()
				release := make(chan struct{})
				w := &stalledWriter{first: make(chan struct{}), release: release}
				done := make(chan error, 1)
				go func() { done <- c.SessionLogs(fctx, agentproto.SessionLogsRequest{Name: "s", Follow: true}, w) }()
				if output == "chatty" {
					<-w.first
				}
				waitGoroutine(t, "guestagent.followLog")
				time.Sleep(100 * time.Millisecond) // the agent is blocked writing, or polling
				tt.leave(cancel, c)
				close(release)
				select {
				case err := <-done:
					if err == nil {
						t.Error("a follow stopped halfway succeeded")
					}
				case <-time.After(10 * time.Second):
					t.Fatal("SessionLogs did not return after the host left")
				}
				waitNoGoroutine(t, "guestagent.(*Server).sessionLogs")
				if tt.name != "cancel" {
					c = e.connect()
				}
				if ss, err := c.Sessions(ctx); err != nil || len(ss) != 1 || ss[0].State != agentproto.SessionRunning {
					t.Errorf("sessions after the follow ended = %+v, %v", ss, err)
				}
			})
		}
	}
}

// stalledWriter takes the first write, then blocks until release: a host
// that stops reading.
type stalledWriter struct {
	once    sync.Once
	first   chan struct{}
	release <-chan struct{}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.first) })
	<-w.release
	return len(p), nil
}

// goroutinesIn returns the stacks of this process's goroutines that run
// fn, one of its closures, or were started by it; the agent under test
// runs in-process.
func goroutinesIn(fn string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			var found []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, fn) {
					found = append(found, g)
				}
			}
			return found
		}
		buf = make([]byte, 2*len(buf))
	}
}

func waitGoroutine(t *testing.T, fn string) {
	t.Helper()
	waitFor(t, fn+" to run", 10*time.Second, func() bool { return len(goroutinesIn(fn)) > 0 })
}

func waitNoGoroutine(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := goroutinesIn(fn)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs after 10s:\n%s", fn, strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
