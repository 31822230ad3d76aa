package agentproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"banger/api/errdefs"
)

// What the host accepts from a guest. The guest may have replaced the agent,
// so everything it sends is hostile input: each reply line is bounded by
// what its call needs (not by MaxHeaderSize), lists are cut at a count, and
// strings at a length. Cut strings are copied, so a kept prefix does not pin
// the whole string the decoder allocated. The daemon keeps hours of stats
// samples per VM, which is why their bounds are the tightest.
const (
	// MaxErrorMessage bounds the message of an error reply or End frame.
	MaxErrorMessage = 4 << 10

	maxStatsReply    = 64 << 10
	maxDisks         = 32
	maxNetIfs        = 64
	maxDeviceLen     = 128
	maxMountLen      = 256
	maxFSTypeLen     = 32
	maxIfNameLen     = 32 // IFNAMSIZ is 16
	maxPortsReply    = 1 << 20
	maxPorts         = 4096
	maxProcessLen    = 256
	maxAddrLen       = 64
	maxSessionsReply = 1 << 20
	maxSessions      = 1024
	maxArgs          = 256
	maxArgLen        = 4 << 10
	maxFieldLen      = 256 // names, paths, users, versions, host keys' other strings
	maxNoteLen       = 1 << 10
	maxHostKeys      = 16
	maxHostKeyLen    = 16 << 10
	smallReply       = 64 << 10 // calls answered with one small object
)

// replyLimits is the longest reply line the host reads per call.
var replyLimits = map[string]int{
	CallHello:         4 << 10,
	CallInfo:          16 << 10,
	CallStats:         maxStatsReply,
	CallPorts:         maxPortsReply,
	CallSessionList:   maxSessionsReply,
	CallSessionStart:  maxSessionReply,
	CallSessionStop:   maxSessionReply,
	CallHostKey:       maxHostKeys*maxHostKeyLen + 4<<10,
	CallExec:          smallReply,
	CallStdin:         smallReply,
	CallCopyIn:        smallReply,
	CallCopyOut:       smallReply,
	CallPutFiles:      smallReply,
	CallAuthorizeKey:  smallReply,
	CallShutdown:      smallReply,
	CallSessionLogs:   smallReply,
	CallSessionAttach: smallReply,
	CallSessionKill:   smallReply,
	CallSessionRemove: smallReply,
	CallSetClock:      smallReply,
	CallReseed:        smallReply,
	CallReidentify:    maxHostKeys*maxHostKeyLen + 8<<10,
	CallDial:          smallReply,
}

// maxSessionReply fits one session with its argv at their bounds.
const maxSessionReply = maxArgs*maxArgLen + 16<<10

// ReplyLimit is the longest reply line the host reads for call.
func ReplyLimit(call string) int {
	if n, ok := replyLimits[call]; ok {
		return n
	}
	return smallReply
}

// clip returns s cut to at most n bytes on a rune boundary, copied when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

// clipList keeps the first n elements of l, in a new array when cut.
func clipList[T any](l []T, n int) []T {
	if len(l) <= n {
		return l
	}
	return append([]T(nil), l[:n]...)
}

// decodeList decodes a JSON array of at most max elements one element at a
// time, so a reply of many tiny elements cannot make the host allocate
// many large structs. Elements past max are an error naming what, or with
// cut, skipped (for lists where the first ones are still worth having).
func decodeList[T any](raw []byte, max int, what string, cut bool) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("decoding %s: not a JSON array", what)
	}
	var out []T
	var skip json.RawMessage // reused: skipping allocates nothing per element
	for dec.More() {
		if len(out) == max && cut {
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", what, err)
			}
			continue
		}
		if len(out) == max {
			return nil, errdefs.Invalid("the guest sent more than %d %s", max, what)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", what, err)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	return out, nil
}

// decodeStats decodes a stats result with its lists read element by element
// and every string bounded. Disks and interfaces past their count are left
// out: a guest with many mounts (snaps, loop devices) still has stats, of
// its first disks (the root comes first).
func decodeStats(raw []byte) (Stats, error) {
	var w struct {
		Stats
		Disks    json.RawMessage `json:"disks"`
		Networks json.RawMessage `json:"networks"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Stats{}, fmt.Errorf("decoding stats: %w", err)
	}
	s := w.Stats
	var err error
	if s.Disks, err = decodeList[Disk](w.Disks, maxDisks, "disks", true); err != nil {
		return Stats{}, err
	}
	if s.Networks, err = decodeList[NetIf](w.Networks, maxNetIfs, "network interfaces", true); err != nil {
		return Stats{}, err
	}
	for i := range s.Disks {
		d := &s.Disks[i]
		d.Device, d.Mount, d.FSType = clip(d.Device, maxDeviceLen), clip(d.Mount, maxMountLen), clip(d.FSType, maxFSTypeLen)
	}
	for i := range s.Networks {
		s.Networks[i].Name = clip(s.Networks[i].Name, maxIfNameLen)
	}
	return s, nil
}

func boundPort(p *Port) {
	p.Proto, p.Addr, p.Process = clip(p.Proto, 8), clip(p.Addr, maxAddrLen), clip(p.Process, maxProcessLen)
}

func boundSession(s *Session) {
	s.Name, s.Dir, s.User = clip(s.Name, maxFieldLen), clip(s.Dir, maxFieldLen), clip(s.User, maxFieldLen)
	s.Mode, s.State, s.Note = clip(s.Mode, 16), clip(s.State, 16), clip(s.Note, maxNoteLen)
	s.Argv = clipList(s.Argv, maxArgs)
	for i := range s.Argv {
		s.Argv[i] = clip(s.Argv[i], maxArgLen)
	}
	if s.Exit != nil {
		s.Exit.Signal = clip(s.Exit.Signal, 16)
	}
}

func boundInfo(in *Info) {
	for _, f := range []*string{&in.Agent, &in.Protocol, &in.Kernel, &in.Arch, &in.OS, &in.Hostname, &in.BootID, &in.InitMode, &in.SSH} {
		*f = clip(*f, maxFieldLen)
	}
}

func boundReidentified(r *Reidentified) {
	r.Hostname, r.MAC, r.Addr, r.MachineID = clip(r.Hostname, maxFieldLen), clip(r.MAC, 32), clip(r.Addr, maxAddrLen), clip(r.MachineID, 64)
	boundHostKeys(&r.HostKeys)
}

func boundHostKeys(hk *HostKeys) {
	hk.Server = clip(hk.Server, 16)
	hk.Keys = clipList(hk.Keys, maxHostKeys)
	for i := range hk.Keys {
		hk.Keys[i] = clip(hk.Keys[i], maxHostKeyLen)
	}
}

// boundError cuts a guest's error message.
func boundError(e *Error) {
	if e != nil {
		e.Kind, e.Message = errdefs.Kind(clip(string(e.Kind), 32)), clip(e.Message, MaxErrorMessage)
	}
}

// boundEnd cuts what an End frame carries.
func boundEnd(e *End) {
	boundError(e.Error)
	if e.Exit != nil {
		e.Exit.Signal = clip(e.Exit.Signal, 16)
	}
}

// ErrOutputTooLarge is what a LimitedBuffer returns once full; as the
// Stdout or Stderr of a call it ends the call.
var ErrOutputTooLarge = errors.New("guest output over its limit")

// LimitedBuffer collects a guest process's output the host reads whole
// (a preflight script, a tar's stderr) up to Max bytes. A write past Max
// keeps what fits and fails, so a guest that never stops writing ends its
// call instead of filling the host's memory.
type LimitedBuffer struct {
	Max int
	bytes.Buffer
}

func (b *LimitedBuffer) Write(p []byte) (int, error) {
	room := b.Max - b.Len()
	if len(p) <= room {
		return b.Buffer.Write(p)
	}
	b.Buffer.Write(p[:max(room, 0)])
	return max(room, 0), fmt.Errorf("%w (%d bytes)", ErrOutputTooLarge, b.Max)
}
