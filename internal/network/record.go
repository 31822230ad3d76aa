package network

import (
	"banger/internal/fsutil"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultStateDir holds the records of what 'banger system setup' did.
const DefaultStateDir = "/var/lib/banger"

// legacyRecordFile is the single record earlier versions kept for the
// whole host; it is read as the host namespace's record until the next
// setup or teardown replaces it.
const legacyRecordFile = "network.json"

// Record is what setup created and changed, kept so teardown undoes
// exactly that and the boot unit can rebuild it. It holds no secrets and
// is world-readable, so 'banger doctor' can read it without root.
//
// There is one record per network: per user, bridge and network namespace
// (recordName), so banger instances of other users or in other
// namespaces never read, replace or remove each other's.
type Record struct {
	Spec Spec `json:"spec"`
	// Namespace is Namespace.Key of where the network is: "" for the host's.
	Namespace string `json:"namespace,omitempty"`
	// ForwardEnabled: IPv4 forwarding was off and banger turned it on;
	// teardown turns it off again. False: it was already on, and stays on.
	ForwardEnabled bool `json:"forward_enabled"`
	// Resolved: banger routed *.vm lookups through systemd-resolved.
	Resolved bool `json:"resolved"`
	// Unit is the boot unit banger wrote, "" if none.
	Unit string `json:"unit,omitempty"`
	// EgressUnit is the egress helper's unit banger wrote, "" if none.
	EgressUnit string    `json:"egress_unit,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// recordName is the file of the record of spec's network in ns:
// network-UID-BRIDGE.json in the host's namespace,
// network-UID-BRIDGE@NAMESPACE.json in another.
func recordName(spec Spec, ns Namespace) string {
	// Interface names may hold '@'; escaped, it only ever separates the
	// namespace.
	name := "network-" + strconv.Itoa(spec.UID) + "-" + strings.NewReplacer("%", "%25", "@", "%40").Replace(spec.Bridge)
	if !ns.Host() {
		name += "@" + ns.Key
	}
	return name + ".json"
}

// storedRecord is a record with the file it came from.
type storedRecord struct {
	Record
	path string
}

// nsRecord returns the record of the network in ns, or nil. banger keeps
// one network per namespace (its nftables table serves one bridge); if
// several records say otherwise, the newest wins.
func (s *System) nsRecord(ns Namespace) (*storedRecord, error) {
	entries, err := os.ReadDir(s.stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading setup records: %w", err)
	}
	var best *storedRecord
	for _, e := range entries {
		key, ok := recordNamespace(e.Name())
		if !ok || key != ns.Key || !e.Type().IsRegular() {
			continue
		}
		r, err := readRecordFile(filepath.Join(s.stateDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if r.Namespace != ns.Key {
			continue // the name says one namespace, the record another: not ours
		}
		if best == nil || r.UpdatedAt.After(best.UpdatedAt) {
			best = r
		}
	}
	if best == nil && ns.Host() {
		legacy := filepath.Join(s.stateDir, legacyRecordFile)
		if _, err := os.Lstat(legacy); err == nil {
			return readRecordFile(legacy)
		}
	}
	return best, nil
}

// recordNamespace is the namespace key in a record's file name.
func recordNamespace(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok || !strings.HasPrefix(base, "network-") {
		return "", false
	}
	_, key, _ := strings.Cut(base, "@")
	return key, true // the bridge's own '@' are escaped (recordName)
}

func readRecordFile(path string) (*storedRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading setup record: %w", err)
	}
	r := &storedRecord{path: path}
	if err := json.Unmarshal(b, &r.Record); err != nil {
		return nil, fmt.Errorf("reading setup record %s: %w; remove it and run %s", path, err, setupQuoted)
	}
	return r, nil
}

// ReadRecord returns the record of the last setup in the calling thread's
// network namespace, or nil when there is none.
func (s *System) ReadRecord() (*Record, error) {
	ns, err := s.netns()
	if err != nil {
		return nil, err
	}
	r, err := s.nsRecord(ns)
	if r == nil || err != nil {
		return nil, err
	}
	return &r.Record, nil
}

// writeRecord stores r under its own name atomically, unless it says what
// is already there, and removes old when that was another file (a
// renamed bridge, a new owner, the legacy record).
func (s *System) writeRecord(r Record, ns Namespace, old *storedRecord) (bool, error) {
	path := filepath.Join(s.stateDir, recordName(r.Spec, ns))
	r.Namespace = ns.Key
	if old != nil && old.path == path {
		r.UpdatedAt = old.UpdatedAt
		if old.Record == r {
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
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), 0o644); err != nil {
		return false, fmt.Errorf("writing setup record: %w", err)
	}
	if old != nil && old.path != path {
		if err := os.Remove(old.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("removing the previous setup record: %w", err)
		}
	}
	return true, nil
}

func removeRecord(r *storedRecord) error {
	if r == nil {
		return nil
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing setup record: %w", err)
	}
	return nil
}
