package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"banger/api"
	"banger/client"
	"banger/internal/progress"
)

// stoppingService has a create that, once cancelled, takes a moment to
// undo what it began, and a status call that ignores cancellation until
// the test releases it.
type stoppingService struct {
	Service
	started chan string
	undo    time.Duration
	undone  atomic.Bool
	release chan struct{}
}

func (f *stoppingService) CreateVM(ctx context.Context, req api.CreateVMRequest, _ progress.Func) (api.VM, error) {
	f.started <- "create"
	<-ctx.Done()
	time.Sleep(f.undo) // undoing a half-done create
	f.undone.Store(true)
	return api.VM{}, ctx.Err()
}

func (f *stoppingService) Status(context.Context) (api.DaemonStatus, error) {
	f.started <- "status"
	<-f.release
	return api.DaemonStatus{}, nil
}

// lockedBuffer is a log sink the handler goroutines and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startStopping serves f on a fresh socket until stop is called, which
// returns Serve's error.
func startStopping(t *testing.T, f *stoppingService, log *slog.Logger, opts ...Option) (s *Server, cl *client.Client, stop func() error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = New(f, log, cancel, opts...)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { stop() })
	return s, client.New(sock), stop
}

// TestServeWaitsForCancelledCalls: a call still running after the drain
// is cancelled, and Serve returns only once it has undone its work; a
// call arriving after the stop is refused.
func TestServeWaitsForCancelledCalls(t *testing.T) {
	f := &stoppingService{started: make(chan string, 1), undo: 300 * time.Millisecond}
	s, cl, stop := startStopping(t, f, slog.New(slog.DiscardHandler), WithDrain(50*time.Millisecond), WithUnwind(time.Minute))

	callErr := make(chan error, 1)
	go func() {
		_, err := cl.CreateVM(context.Background(), api.CreateVMRequest{Name: "dev"}, nil)
		callErr <- err
	}()
	<-f.started
	if err := stop(); err != nil {
		t.Errorf("Serve = %v; want nil, every call returned", err)
	}
	if !f.undone.Load() {
		t.Error("Serve returned while a cancelled create was still undoing its work")
	}
	if err := <-callErr; err == nil {
		t.Error("the cancelled create reported success")
	}

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/no-such-route", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "bangerd is stopping") {
		t.Errorf("a call after the stop: %d %s; want 503, bangerd is stopping", rec.Code, rec.Body)
	}
}

// TestServeUnwindBound: a call that ignores cancellation holds the stop
// only for the unwind bound; the route is named in the log and the error.
func TestServeUnwindBound(t *testing.T) {
	f := &stoppingService{started: make(chan string, 1), release: make(chan struct{})}
	var logs lockedBuffer
	_, cl, stop := startStopping(t, f, slog.New(slog.NewTextHandler(&logs, nil)), WithDrain(50*time.Millisecond), WithUnwind(200*time.Millisecond))

	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(f.release)
	wg.Go(func() { cl.Status(context.Background()) })
	<-f.started
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "GET /v1/daemon") {
		t.Errorf("Serve = %v; want an error naming GET /v1/daemon", err)
	}
	if got := logs.String(); !strings.Contains(got, "API calls still running after they were cancelled") || !strings.Contains(got, "GET /v1/daemon") {
		t.Errorf("log after a wedged call:\n%s\nwant a line naming GET /v1/daemon", got)
	}
}
