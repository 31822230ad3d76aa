package guestagent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

const (
	defaultStopTimeout = 10 * time.Second
	killGrace          = 5 * time.Second
	adoptedPoll        = time.Second
)

// stop sends SIGTERM to the session's group, then SIGKILL after the
// timeout, and returns the session once it ended.
func (m *sessionManager) stop(ctx context.Context, req agentproto.SessionStopRequest) (any, error) {
	s, err := m.get(req.Name)
	if err != nil {
		return nil, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = defaultStopTimeout
	}
	if err := s.signalGroup(unix.SIGTERM); err != nil {
		return nil, err
	}
	if !waitDone(ctx, s.done, timeout) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := s.signalGroup(unix.SIGKILL); err != nil {
			return nil, err
		}
		if !waitDone(ctx, s.done, killGrace) {
			return nil, errdefs.Unavailable("session %q survived SIGKILL for %s", req.Name, killGrace)
		}
	}
	return s.view(), nil
}

func waitDone(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// kill signals the session's group (KILL by default) without waiting.
func (m *sessionManager) kill(ctx context.Context, req agentproto.SessionKillRequest) (any, error) {
	s, err := m.get(req.Name)
	if err != nil {
		return nil, err
	}
	sig, err := parseSignal(orDefault(req.Signal, "KILL"))
	if err != nil {
		return nil, err
	}
	return nil, s.signalGroup(sig)
}

// remove forgets an ended session and deletes its directory.
func (m *sessionManager) remove(ctx context.Context, req agentproto.SessionName) (any, error) {
	s, err := m.get(req.Name)
	if err != nil {
		return nil, err
	}
	if s.running() {
		return nil, errdefs.Conflict("session %q is running; stop it before removing it", req.Name)
	}
	m.mu.Lock()
	delete(m.all, req.Name)
	m.mu.Unlock()
	if err := os.RemoveAll(s.dir); err != nil {
		return nil, fmt.Errorf("removing %s: %w", s.dir, err)
	}
	return nil, nil
}

// load rebuilds the sessions from disk after an agent (re)start. A process
// still running from the same boot is adopted: it can be listed, signalled
// and its logs read, but its stdin pipe and exit status are gone with the
// agent that started it.
func (m *sessionManager) load() error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", m.dir, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(m.dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var rec sessionRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Name != e.Name() {
			m.log.Warn("skipping unreadable session", "dir", e.Name(), "err", err)
			continue
		}
		s := &session{dir: filepath.Join(m.dir, e.Name()), done: make(chan struct{}), rec: rec}
		s.rec.Attached, s.rec.StdinOpen = false, false
		m.all[rec.Name] = s
		m.resume(s)
	}
	return nil
}

func (m *sessionManager) resume(s *session) {
	rec := s.rec
	switch {
	case rec.State != agentproto.SessionRunning:
		close(s.done)
	case rec.BootID != m.bootID:
		s.finish(nil, "the guest rebooted while the session ran; exit status unknown")
	case rec.StartTicks != 0 && procStartTicks(rec.PID) == rec.StartTicks:
		s.mu.Lock()
		s.rec.Note = "the agent restarted while the session ran: stdin is closed and the exit status will be unknown"
		s.mu.Unlock()
		go m.watchAdopted(s)
	default:
		s.finish(nil, "the session ended while the agent was not running; exit status unknown")
	}
}

// watchAdopted notices when an adopted process (not our child, so no wait)
// goes away.
func (m *sessionManager) watchAdopted(s *session) {
	t := time.NewTicker(adoptedPoll)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if procStartTicks(s.rec.PID) != s.rec.StartTicks {
			s.finish(nil, "the session ended after the agent restarted; exit status unknown")
			return
		}
	}
}

// procStartTicks is field 22 of /proc/<pid>/stat, the start time in clock
// ticks after boot, which tells a process apart from a later one that got
// the same PID. It is 0 for a missing or zombie process.
func procStartTicks(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}
