// Package claims keeps two operations off one thing: a claim on a key is
// a conflict for a second operation, never a wait, and says what holds
// it. A Set also counts the claims held, so the service that owns it can
// wait, when it closes, for every operation still in flight.
package claims

import (
	"sync"

	"banger/api/errdefs"
)

// Set is one service's claims. The zero value is ready to use.
type Set struct {
	// Prefix is put before a key in conflict messages ("vm/").
	Prefix string

	mu      sync.Mutex
	held    map[string]string // key -> what holds it
	ops     sync.WaitGroup    // one per claim held
	closing bool              // Drain was called: no new claims
}

// Claim marks key busy with what, or returns a conflict naming the
// operation already running. release ends the claim; calling it again
// does nothing.
func (s *Set) Claim(key, what string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errdefs.Unavailable("bangerd is stopping; run the command again once it has restarted")
	}
	if cur, ok := s.held[key]; ok {
		return nil, errdefs.Conflict("%s%s is busy (%s in progress); wait for it to finish", s.Prefix, key, cur)
	}
	if s.held == nil {
		s.held = map[string]string{}
	}
	s.held[key] = what
	s.ops.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.held, key)
			s.mu.Unlock()
			s.ops.Done()
		})
	}, nil
}

// Holder says what holds key, or "".
func (s *Set) Holder(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[key]
}

// Drain refuses new claims and returns once no claim is held: every
// operation that claimed something has ended.
func (s *Set) Drain() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.ops.Wait()
}
