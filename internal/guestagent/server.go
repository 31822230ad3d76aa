package guestagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"banger/internal/agentproto"
)

// Config is what a Server needs.
type Config struct {
	// Paths locate the agent's state and the files it manages.
	Paths Paths
	// InitMode is reported by info: agentproto.InitModePID1, InitModeService or
	// InitModeDev.
	InitMode string
	// SSH is the SSH server the guest runs, for info and host_key; nil when
	// there is none.
	SSH SSHProvider
	// Power carries out shutdown calls after they were answered; nil refuses
	// them.
	Power func(reboot bool) error
	// Clock is what set_clock sets; nil refuses the call.
	Clock Clock
	// RandomDevice is where reseed writes entropy; "" is /dev/random.
	RandomDevice string
	// Logger receives the agent's diagnostics; nil discards them.
	Logger *slog.Logger
}

// SSHProvider is whichever SSH server the guest runs.
type SSHProvider interface {
	Kind() string // "openssh" or "builtin"
	HostKeys() (agentproto.HostKeys, error)
}

// Server answers agent calls on any number of host connections. Sessions
// belong to the Server, not to a connection, so a host that reconnects sees
// them again.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessionManager
	calls    map[string]handler
	// identity serializes reidentify calls: two at once would interleave
	// their network changes.
	identity sync.Mutex
}

// New loads the sessions remembered on disk and returns a Server.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sm, err := newSessionManager(cfg.Paths.sessionsDir(), log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, sessions: sm}
	s.calls = s.handlers()
	return s, nil
}

// Close stops watching sessions; their processes keep running.
func (s *Server) Close() { s.sessions.close() }

// Serve accepts host connections on ln until ctx is done or ln fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting on %s: %w", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, c); err != nil {
				s.log.Debug("connection ended", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

// ServeConn serves one host connection until it ends. Processes started by
// exec on it are killed when it does; sessions are not.
func (s *Server) ServeConn(ctx context.Context, c io.ReadWriteCloser) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	synced, err := agentproto.GuestSync(c)
	if err != nil {
		return fmt.Errorf("syncing with the host: %w", err)
	}
	sess, err := yamux.Server(synced, agentproto.MuxConfig())
	if err != nil {
		return fmt.Errorf("starting yamux: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cn := newConn(cctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // kills this connection's exec processes
		sess.Close()
		wg.Wait()
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if agentproto.SessionEnded(err) {
				return nil
			}
			return fmt.Errorf("accepting stream: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveStream(cctx, cn, st)
		}()
	}
}

// ServePort serves a transport that is a single byte stream, such as a
// virtio-serial port: one host connection at a time, reopened with open
// after each one ends, until ctx is done.
func (s *Server) ServePort(ctx context.Context, open func() (io.ReadWriteCloser, error)) error {
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		rwc, err := open()
		if err != nil {
			s.log.Debug("opening port", "err", err)
		} else {
			start := time.Now()
			err := s.ServeConn(ctx, rwc)
			s.log.Debug("port session ended", "err", err)
			if time.Since(start) > 5*time.Second {
				wait = 50 * time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
	return nil
}
