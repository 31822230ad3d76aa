package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gofrs/flock"

	"banger/internal/errdefs"
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
	if err := paths.EnsurePrivateDir(layout.RuntimeDir); err != nil {
		return nil, err
	}
	lock := flock.New(layout.LockPath)
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", layout.LockPath, err)
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

// Close stops listening and releases the claim. The socket and pid file
// go before the lock so a successor never sees our leftovers.
// It is safe to call more than once (http.Server.Shutdown closes it too).
func (s *Socket) Close() error {
	s.once.Do(func() {
		s.err = s.Listener.Close()
		os.Remove(s.layout.SocketPath)
		os.Remove(s.layout.PIDPath)
		s.lock.Unlock()
	})
	return s.err
}
