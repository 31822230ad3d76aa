package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DefaultStateDir holds the record of what 'banger system setup' did.
const DefaultStateDir = "/var/lib/banger"

const recordFile = "network.json"

// Record is what setup created and changed, kept so teardown undoes
// exactly that and the boot unit can rebuild it. It holds no secrets and
// is world-readable, so 'banger doctor' can read it without root.
type Record struct {
	Spec Spec `json:"spec"`
	// ForwardEnabled: IPv4 forwarding was off and banger turned it on;
	// teardown turns it off again. False: it was already on, and stays on.
	ForwardEnabled bool `json:"forward_enabled"`
	// Resolved: banger routed *.vm lookups through systemd-resolved.
	Resolved bool `json:"resolved"`
	// Unit is the boot unit banger wrote, "" if none.
	Unit      string    `json:"unit,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *System) recordPath() string { return filepath.Join(s.stateDir, recordFile) }

// ReadRecord returns the record of the last setup, or nil when there is none.
func (s *System) ReadRecord() (*Record, error) {
	b, err := os.ReadFile(s.recordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading setup record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading setup record %s: %w; remove it and run %s", s.recordPath(), err, setupQuoted)
	}
	return &r, nil
}

// writeRecord stores r atomically, unless it says what is already there.
func (s *System) writeRecord(r Record) (bool, error) {
	if old, err := s.ReadRecord(); err == nil && old != nil {
		r.UpdatedAt = old.UpdatedAt
		if *old == r {
			return false, nil
		}
	}
	r.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(s.stateDir, 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", s.stateDir, err)
	}
	tmp := s.recordPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return false, fmt.Errorf("writing setup record: %w", err)
	}
	if err := os.Rename(tmp, s.recordPath()); err != nil {
		return false, fmt.Errorf("writing setup record: %w", err)
	}
	return true, nil
}

func (s *System) removeRecord() (bool, error) {
	err := os.Remove(s.recordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing setup record: %w", err)
	}
	return true, nil
}
