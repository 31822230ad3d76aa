package guestagent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// agentEnv is a Server on temporary paths and a way to connect hosts to it.
type agentEnv struct {
	t     *testing.T
	srv   *guestagent.Server
	paths guestagent.Paths
	ctx   context.Context
	wg    sync.WaitGroup
}

func testPaths(t *testing.T) guestagent.Paths {
	dir := t.TempDir()
	return guestagent.Paths{
		StateDir:  filepath.Join(dir, "state"),
		ConfigDir: filepath.Join(dir, "etc-banger"),
		Home:      filepath.Join(dir, "home"),
		SSHDir:    filepath.Join(dir, "etc-ssh"),
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("AGENT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newEnv(t *testing.T, cfg guestagent.Config) *agentEnv {
	t.Helper()
	if cfg.Paths == (guestagent.Paths{}) {
		cfg.Paths = testPaths(t)
	}
	if cfg.InitMode == "" {
		cfg.InitMode = agentproto.InitModeDev
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := guestagent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &agentEnv{t: t, srv: srv, paths: cfg.Paths, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		e.wg.Wait()
		srv.Close()
		killSessions(cfg.Paths)
	})
	return e
}

// killSessions kills the process groups of sessions a test left running,
// then waits for the agent to record their end: its last write into the
// session directory, which must not race the test's temp dir removal.
func killSessions(p guestagent.Paths) {
	metas, _ := filepath.Glob(filepath.Join(p.StateDir, "sessions", "*", "meta.json"))
	// running returns the pid of the session m records as running.
	running := func(m string) (int, bool) {
		b, _ := os.ReadFile(m)
		var s agentproto.Session
		ok := json.Unmarshal(b, &s) == nil && s.State == agentproto.SessionRunning && s.PID > 0
		return s.PID, ok
	}
	var killed []string
	for _, m := range metas {
		if pid, ok := running(m); ok {
			unix.Kill(-pid, unix.SIGKILL)
			killed = append(killed, m)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range killed {
		for _, ok := running(m); ok && time.Now().Before(deadline); _, ok = running(m) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// connect serves a fresh socketpair and returns the host's Client on it.
func (e *agentEnv) connect() *agentproto.Client {
	e.t.Helper()
	host, guestSide := socketpair(e.t)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.srv.ServeConn(e.ctx, guestSide)
	}()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	c, err := agentproto.NewClient(ctx, host)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func socketpair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for one writer and polling readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid has exited (missing or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) == 0 || f[0] == "Z"
}

func guestConfig() guestagent.Config { return guestagent.Config{} }

func isRoot() bool { return os.Geteuid() == 0 }

func hasUser(name string) bool {
	b, _ := os.ReadFile("/etc/passwd")
	return strings.Contains(string(b), "\n"+name+":") || strings.HasPrefix(string(b), name+":")
}

func currentUser() string {
	b, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(os.Getuid()) {
			return f[0]
		}
	}
	return strconv.Itoa(os.Getuid())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
