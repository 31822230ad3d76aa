package guestagent

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// Clock is the guest's wall clock, which set_clock moves. The agent sets
// the real one (SystemClock) only when it owns the machine, as init or
// under the guest's systemd; on a developer's host it has none.
type Clock interface {
	Now() time.Time
	Set(time.Time) error
}

// SystemClock is CLOCK_REALTIME.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Set implements Clock with clock_settime(2); it needs CAP_SYS_TIME.
func (SystemClock) Set(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("setting CLOCK_REALTIME: %w", err)
	}
	return nil
}

// ClockFunc is the clock an agent in initMode sets: the system's as init or
// a service, none in dev mode, where it would move the developer's clock.
func ClockFunc(initMode string) Clock {
	if initMode == agentproto.InitModeDev {
		return nil
	}
	return SystemClock{}
}

func (s *Server) setClock(ctx context.Context, req agentproto.SetClockRequest) (any, error) {
	if s.cfg.Clock == nil {
		return nil, errdefs.Unsupported("this agent does not set the clock (it runs in %s mode)", s.cfg.InitMode)
	}
	if req.Time.IsZero() || req.Time.Year() < 2000 || req.Time.Year() > 9999 {
		return nil, errdefs.Invalid("set_clock time %s is not a plausible wall clock time", req.Time)
	}
	before := s.cfg.Clock.Now()
	if err := s.cfg.Clock.Set(req.Time); err != nil {
		return nil, err
	}
	res := agentproto.ClockResult{Before: before, After: s.cfg.Clock.Now(), Moved: req.Time.Sub(before)}
	s.log.Info("clock set", "moved", res.Moved)
	return res, nil
}
