package images

import (
	"banger/api"
	"banger/internal/config"
	"banger/internal/paths"
	"banger/internal/store"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newService is an image service on temporary state, with no VMs.
func newService(t *testing.T) *Service {
	t.Helper()
	dir := t.TempDir()
	layout := paths.New(filepath.Join(dir, "config"), filepath.Join(dir, "state"), filepath.Join(dir, "cache"), filepath.Join(dir, "run"))
	if err := layout.Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), layout.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	return New(Options{Layout: layout, Config: config.Default(), Store: st, Logger: log, Events: discard{}, VMM: "qemu"})
}

type discard struct{}

func (discard) Event(context.Context, string, string, string) {}

// A prune waits for the pulls and builds in progress (here: one holding
// the caches), lets new ones start meanwhile, and gives up when its
// caller goes away.
func TestPruneWaitsForPullsAndBuilds(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	release := s.useCaches(nil) // a pull in progress
	done := make(chan error, 1)
	go func() {
		_, err := s.PruneImages(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the prune ran during a pull (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	started := make(chan struct{})
	go func() { s.useCaches(nil)(); close(started) }() // another pull
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting prune holds up new pulls")
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("prune after the pull: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the prune did not run once the pull was done")
	}

	release = s.useCaches(nil)
	defer release()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := s.PruneImages(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("prune whose caller went away: %v, want the context's error", err)
	}
}

// A pull that starts during a prune says it waits, and runs after it.
func TestPullWaitsForAPrune(t *testing.T) {
	s := newService(t)
	s.cacheMu.Lock() // a prune in progress
	var waited atomic.Bool
	done := make(chan error, 1)
	go func() {
		_, err := s.PullImage(context.Background(), api.PullImageRequest{Ref: "127.0.0.1:1/nothing:here", Kernel: "/nonexistent/vmlinux"}, func(ev api.Event) {
			if ev.Step == "wait" && strings.Contains(ev.Message, "image prune") {
				waited.Store(true)
			}
		})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the pull ran during a prune (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if !waited.Load() {
		t.Error("the waiting pull did not say why it waits")
	}
	s.cacheMu.Unlock()
	select {
	case <-done: // it fails: nothing answers on port 1
	case <-time.After(30 * time.Second):
		t.Fatal("the pull did not run after the prune")
	}
}
