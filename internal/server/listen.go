package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/gofrs/flock"

	"banger/api/errdefs"
	"banger/internal/paths"
)

// Socket is the daemon's claim on its runtime directory: the instance
// lock, the pid file and the listening socket.
type Socket struct {
	net.Listener
	layout paths.Layout
	lock   *flock.Flock
	once   sync.Once
	err    error
}

// Listen takes the single-instance lock and listens on the layout's
// socket (mode 0600 in a 0700 directory). A second daemon for the same
// user fails here with an error naming the running one.
func Listen(layout paths.Layout) (*Socket, error) {
	lock, ok, err := lockRuntime(layout)
	if err != nil {
		return nil, err
	}
	if !ok {
		pid := "unknown"
		if b, err := os.ReadFile(layout.PIDPath); err == nil {
			pid = strings.TrimSpace(string(b))
		}
		return nil, errdefs.Conflict("bangerd is already running (pid %s, socket %s); stop it with 'banger daemon stop'", pid, layout.SocketPath)
	}
	// We hold the lock, so any socket file left is a dead daemon's.
	if err := os.Remove(layout.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Unlock()
		return nil, fmt.Errorf("removing stale socket %s: %w", layout.SocketPath, err)
	}
	l, err := net.Listen("unix", layout.SocketPath)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("listening on %s: %w", layout.SocketPath, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(layout.SocketPath, 0o600); err != nil {
		l.Close()
		lock.Unlock()
		return nil, fmt.Errorf("restricting %s: %w", layout.SocketPath, err)
	}
	if err := os.WriteFile(layout.PIDPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		l.Close()
		lock.Unlock()
		return nil, fmt.Errorf("writing %s: %w", layout.PIDPath, err)
	}
	return &Socket{Listener: l, layout: layout, lock: lock}, nil
}

// lockRuntime takes the single-instance lock in the runtime directory,
// creating the directory. A daemon that stops removes the lock file and
// the directory (Close), so the lock taken may be on a file that is gone
// by then, or the directory may go between its creation and the lock:
// both are tried again, so two daemons never hold locks on two files.
func lockRuntime(layout paths.Layout) (*flock.Flock, bool, error) {
	for range 10 {
		if err := paths.EnsurePrivateDir(layout.RuntimeDir); err != nil {
			return nil, false, err
		}
		lock := flock.New(layout.LockPath)
		ok, err := lock.TryLock()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("locking %s: %w", layout.LockPath, err)
		}
		if !ok {
			return nil, false, nil
		}
		held, err := lock.Stat()
		cur, cerr := os.Stat(layout.LockPath)
		if err == nil && cerr == nil && os.SameFile(held, cur) {
			return lock, true, nil
		}
		lock.Unlock()
	}
	return nil, false, fmt.Errorf("locking %s: another bangerd keeps starting and stopping; try again", layout.LockPath)
}

// Close stops listening and releases the claim. The socket and pid file
// go before the lock so a successor never sees our leftovers; the lock
// file goes while still held (a successor that opened it sees it gone and
// tries again). Then the runtime directory goes if nothing else is in it
// (running VMs keep their directories under it), so a stopped daemon
// leaves nothing in /tmp when XDG_RUNTIME_DIR is unset.
// It is safe to call more than once (http.Server.Shutdown closes it too).
func (s *Socket) Close() error {
	s.once.Do(func() {
		s.err = s.Listener.Close()
		os.Remove(s.layout.SocketPath)
		os.Remove(s.layout.PIDPath)
		os.Remove(s.layout.LockPath)
		s.lock.Unlock()
		removeIfEmpty(s.layout.RuntimeDir)
	})
	return s.err
}

// removeIfEmpty removes dir's empty subdirectories, then dir if that left
// it empty. Anything with content stays.
func removeIfEmpty(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}
