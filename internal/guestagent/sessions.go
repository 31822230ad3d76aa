package guestagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// sessionManager supervises sessions and remembers them in
// <dir>/<name>/{meta.json,stdout.log,stderr.log}. The process writes its
// output straight into the log files, so a session survives the agent.
type sessionManager struct {
	dir    string
	log    *slog.Logger
	bootID string
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	all map[string]*session
}

// session is one supervised process.
type session struct {
	dir  string
	done chan struct{} // closed once the process has ended

	mu       sync.Mutex
	rec      sessionRecord
	stdin    *os.File // pipe mode: write end, until closed
	attached bool
}

// sessionRecord is meta.json: the public view plus what it takes to
// recognise the process after an agent restart.
type sessionRecord struct {
	agentproto.Session
	BootID     string `json:"boot_id"`
	StartTicks uint64 `json:"start_ticks"` // /proc/<pid>/stat starttime
}

var sessionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

func newSessionManager(dir string, log *slog.Logger) (*sessionManager, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &sessionManager{dir: dir, log: log, ctx: ctx, cancel: cancel, all: map[string]*session{},
		bootID: readTrimmed("/proc/sys/kernel/random/boot_id")}
	if err := m.load(); err != nil {
		cancel()
		return nil, err
	}
	return m, nil
}

func (m *sessionManager) close() { m.cancel() }

func (m *sessionManager) get(name string) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.all[name]
	if !ok {
		return nil, errdefs.NotFound("session %q not found; list sessions to see the names", name)
	}
	return s, nil
}

func (m *sessionManager) start(ctx context.Context, req agentproto.SessionStart) (any, error) {
	if err := validateStart(&req); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.all[req.Name]; ok {
		return nil, errdefs.Conflict("session %q already exists (%s); remove it first or pick another name", req.Name, old.view().State)
	}
	s, err := m.spawn(req)
	if err != nil {
		return nil, err
	}
	m.all[req.Name] = s
	return s.view(), nil
}

func validateStart(req *agentproto.SessionStart) error {
	if !sessionNameRE.MatchString(req.Name) {
		return errdefs.Invalid("session name %q must be 1-64 of [A-Za-z0-9._-] and not start with '.'", req.Name)
	}
	if len(req.Argv) == 0 {
		return errdefs.Invalid("session %q has an empty argv", req.Name)
	}
	switch req.Mode {
	case "":
		req.Mode = agentproto.SessionDetached
	case agentproto.SessionDetached, agentproto.SessionPipe:
	default:
		return errdefs.Invalid("session mode %q must be %q or %q", req.Mode, agentproto.SessionDetached, agentproto.SessionPipe)
	}
	return nil
}

// spawn starts the process with its output on the log files.
func (m *sessionManager) spawn(req agentproto.SessionStart) (*session, error) {
	dir := filepath.Join(m.dir, req.Name)
	os.RemoveAll(dir) // leftovers of a session that never recorded meta.json
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	cmd, err := prepareCmd(procSpec{Argv: req.Argv, Env: req.Env, Dir: req.Dir, User: req.User})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &session{dir: dir, done: make(chan struct{})}
	child, err := s.wire(cmd, req.Mode == agentproto.SessionPipe)
	if err == nil {
		err = cmd.Start()
	}
	for _, f := range child {
		f.Close()
	}
	if err != nil {
		if s.stdin != nil {
			s.stdin.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting session %q: %w", req.Name, err)
	}
	pid := cmd.Process.Pid
	s.rec = sessionRecord{
		Session: agentproto.Session{Name: req.Name, Argv: req.Argv, Dir: cmd.Dir, User: req.User, Mode: req.Mode,
			State: agentproto.SessionRunning, PID: pid, StartedAt: time.Now().UTC()},
		BootID: m.bootID, StartTicks: procStartTicks(pid),
	}
	s.save()
	go m.reap(s, cmd)
	return s, nil
}

// wire connects the process to its log files and, in pipe mode, a stdin
// pipe; it returns the files the child inherits.
func (s *session) wire(c *exec.Cmd, pipe bool) ([]*os.File, error) {
	var child []*os.File
	for _, name := range []string{agentproto.StreamStdout, agentproto.StreamStderr} {
		f, err := os.OpenFile(s.logPath(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
		if err != nil {
			return child, fmt.Errorf("creating %s log: %w", name, err)
		}
		child = append(child, f)
	}
	c.Stdout, c.Stderr = child[0], child[1]
	if pipe {
		r, w, err := os.Pipe()
		if err != nil {
			return child, fmt.Errorf("creating stdin pipe: %w", err)
		}
		c.Stdin, s.stdin = r, w
		child = append(child, r)
	}
	return child, nil
}

func (s *session) logPath(stream string) string { return filepath.Join(s.dir, stream+".log") }

// reap records how the process ended.
func (m *sessionManager) reap(s *session, cmd *exec.Cmd) {
	cmd.Wait() // the status is in ProcessState
	st := exitStatus(cmd.ProcessState)
	s.finish(&st, "")
}

// finish marks the session ended; exit nil means the status is unknown.
// The end is on disk before anyone can see it: an agent restarted right
// after a listing showed the session exited finds the same exit.
func (s *session) finish(exit *agentproto.ExitStatus, note string) {
	s.mu.Lock()
	now := time.Now().UTC()
	s.rec.State, s.rec.Exit, s.rec.EndedAt, s.rec.Note = agentproto.SessionExited, exit, &now, note
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
	}
	s.saveLocked()
	s.mu.Unlock()
	close(s.done)
}

// save writes meta.json atomically.
func (s *session) save() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveLocked()
}

func (s *session) saveLocked() {
	b, _ := json.MarshalIndent(s.rec, "", "  ")
	tmp := filepath.Join(s.dir, ".meta.json.tmp")
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, filepath.Join(s.dir, "meta.json"))
	}
}

// view is the session as the host sees it.
func (s *session) view() agentproto.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.rec.Session
	v.StdinOpen = s.stdin != nil
	v.Attached = s.attached
	return v
}

// running reports whether the session has not yet been marked ended. It
// reads the recorded state (set before done is closed) so a caller that has
// seen the session exited in a listing never finds it still running.
func (s *session) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.State != agentproto.SessionExited
}

func (m *sessionManager) list(ctx context.Context, _ none) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]agentproto.Session, 0, len(m.all))
	for _, s := range m.all {
		out = append(out, s.view())
	}
	slices.SortFunc(out, func(a, b agentproto.Session) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// signalGroup signals the session's process group (it leads its own
// session, so the group ID is its PID).
func (s *session) signalGroup(sig syscall.Signal) error {
	if !s.running() {
		return nil
	}
	if err := unix.Kill(-s.rec.PID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signalling session %q: %w", s.rec.Name, err)
	}
	return nil
}
