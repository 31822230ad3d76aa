package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// State is a piece's condition.
type State string

const (
	StateOK      State = "ok"
	StateMissing State = "missing" // not there at all
	StateWrong   State = "wrong"   // there, but not as it should be
	StateUnknown State = "unknown" // could not be checked (usually: needs root)
	StateOff     State = "off"     // does not apply to this host
)

// PieceStatus is the condition of one piece of the host network.
type PieceStatus struct {
	Name   string `json:"name"` // bridge, taps, ip-forward, nat, resolved, unit
	State  State  `json:"state"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Status is the condition of every piece.
type Status struct {
	Spec   Spec          `json:"spec"`
	Record *Record       `json:"record,omitempty"` // what the last setup did; nil if none
	Pieces []PieceStatus `json:"pieces"`
	// BridgeCarrier: a VM is attached to the bridge. systemd-resolved
	// only uses links with carrier, so *.vm lookups on the host reach
	// banger only while a VM runs (which is when there is a name to find).
	BridgeCarrier bool `json:"bridge_carrier"`
}

// Piece returns the named piece's status.
func (st Status) Piece(name string) PieceStatus {
	i := slices.IndexFunc(st.Pieces, func(p PieceStatus) bool { return p.Name == name })
	if i < 0 {
		return PieceStatus{Name: name, State: StateUnknown}
	}
	return st.Pieces[i]
}

// Ready reports whether VMs can get a working network: no piece is missing
// or wrong.
func (st Status) Ready() bool {
	return !slices.ContainsFunc(st.Pieces, func(p PieceStatus) bool { return p.State == StateMissing || p.State == StateWrong })
}

// Status checks each piece spec needs without changing anything. Without
// root the nftables table cannot be read; that piece is then unknown.
func (s *System) Status(ctx context.Context, spec Spec) Status {
	rec, _ := s.ReadRecord()
	if rec != nil && rec.Spec.Bridge == spec.Bridge && spec.Uplink == "" {
		spec.Uplink = rec.Spec.Uplink // a setup --uplink choice is not in the config
	}
	st := Status{Spec: spec, Record: rec}
	for _, check := range []func(Spec) PieceStatus{s.bridgeStatus, s.tapsStatus, s.forwardStatus, s.natStatus, s.resolvedStatus, s.unitStatus, s.egressStatus} {
		p := check(spec)
		if (p.State == StateMissing || p.State == StateWrong) && p.Fix == "" {
			p.Fix = SetupCommand
		}
		st.Pieces = append(st.Pieces, p)
	}
	if l, err := s.links.Link(spec.Bridge); err == nil {
		st.BridgeCarrier = l.Carrier
	}
	return st
}

func piece(name string, state State, detail string, args ...any) PieceStatus {
	return PieceStatus{Name: name, State: state, Detail: fmt.Sprintf(detail, args...)}
}

func (s *System) bridgeStatus(spec Spec) PieceStatus {
	l, err := s.links.Link(spec.Bridge)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		return piece("bridge", StateMissing, "bridge %s does not exist", spec.Bridge)
	case err != nil:
		return piece("bridge", StateUnknown, "%v", err)
	case l.Kind != "bridge" || l.Alias != bridgeAlias:
		p := piece("bridge", StateWrong, "%s is a %s interface banger did not create", spec.Bridge, l.Kind)
		p.Fix = "set bridge_name in config.toml to a name not in use, then run " + setupQuoted
		return p
	case !slices.Contains(l.Addrs, spec.bridgeAddr()):
		return piece("bridge", StateWrong, "bridge %s lacks address %s", spec.Bridge, spec.bridgeAddr())
	case !l.Up:
		return piece("bridge", StateWrong, "bridge %s is down", spec.Bridge)
	}
	carrier := "no VM attached yet"
	if l.Carrier {
		carrier = "VMs attached"
	}
	return piece("bridge", StateOK, "bridge %s has %s (%s)", spec.Bridge, spec.bridgeAddr(), carrier)
}

func (s *System) tapsStatus(spec Spec) PieceStatus {
	var problems []string
	inUse, missing := 0, 0
	for _, name := range TapNames(spec.Bridge, spec.Taps) {
		l, err := s.links.Link(name)
		switch {
		case errors.Is(err, ErrLinkNotFound):
			missing++
			problems = append(problems, name+" is missing")
		case err != nil:
			problems = append(problems, err.Error())
		case l.Tap == nil || !l.Tap.TAP:
			problems = append(problems, name+" is not a tap")
		case l.Tap.Owner != spec.UID:
			problems = append(problems, fmt.Sprintf("%s belongs to uid %d, not %d", name, l.Tap.Owner, spec.UID))
		case l.Master != spec.Bridge:
			problems = append(problems, fmt.Sprintf("%s is not on %s", name, spec.Bridge))
		case !l.Up:
			problems = append(problems, name+" is down")
		case l.Carrier:
			inUse++
		}
	}
	if missing == spec.Taps {
		return piece("taps", StateMissing, "none of the %d taps %s ... %s exist", spec.Taps, TapName(spec.Bridge, 0), TapName(spec.Bridge, spec.Taps-1))
	}
	if len(problems) > 0 {
		return piece("taps", StateWrong, "%s", strings.Join(problems, "; "))
	}
	return piece("taps", StateOK, "%d taps (%s ... %s) on %s owned by uid %d, %d in use",
		spec.Taps, TapName(spec.Bridge, 0), TapName(spec.Bridge, spec.Taps-1), spec.Bridge, spec.UID, inUse)
}

func (s *System) forwardStatus(spec Spec) PieceStatus {
	v, err := s.sysctl.Get(forwardKey)
	switch {
	case err != nil:
		return piece("ip-forward", StateUnknown, "%v", err)
	case v != "1":
		return piece("ip-forward", StateMissing, "IPv4 forwarding is off, so VMs cannot reach the network")
	}
	return piece("ip-forward", StateOK, "IPv4 forwarding is on")
}

func (s *System) natStatus(spec Spec) PieceStatus {
	present, diff, err := s.fw.Check(spec.firewall())
	switch {
	case errors.Is(err, os.ErrPermission):
		p := piece("nat", StateUnknown, "reading nftables needs root")
		if rec, _ := s.ReadRecord(); rec != nil {
			p.Detail += fmt.Sprintf("; banger system setup ran at %s", rec.UpdatedAt.Format("2006-01-02 15:04 MST"))
		}
		p.Fix = `'sudo "$(command -v banger)" system status' checks it`
		return p
	case err != nil:
		return piece("nat", StateUnknown, "%v", err)
	case !present:
		return piece("nat", StateMissing, "nftables table ip %s does not exist, so VMs cannot reach the network", TableName)
	case diff != "":
		return piece("nat", StateWrong, "nftables table ip %s: %s", TableName, diff)
	}
	return piece("nat", StateOK, "nftables table ip %s masquerades %s", TableName, spec.CIDR)
}

func (s *System) resolvedStatus(spec Spec) PieceStatus {
	if !s.resolved.Available() {
		p := piece("resolved", StateOff, "systemd-resolved is not running, so *.%s names do not resolve on the host (ssh NAME.%s works without it through banger's ssh config)", Domain, Domain)
		p.Fix = fmt.Sprintf("point your resolver's %q domain at %s (dnsmasq: server=/%s/%s), or use 'banger vm ssh'", Domain, spec.BridgeIP, Domain, spec.BridgeIP)
		return p
	}
	ok, err := s.resolved.Check(spec.Bridge, spec.BridgeIP, Domain)
	switch {
	case err != nil:
		return piece("resolved", StateUnknown, "%v", err)
	case !ok:
		return piece("resolved", StateMissing, "systemd-resolved does not send *.%s lookups to %s on %s", Domain, spec.BridgeIP, spec.Bridge)
	}
	return piece("resolved", StateOK, "systemd-resolved sends *.%s lookups to %s on %s", Domain, spec.BridgeIP, spec.Bridge)
}

func (s *System) unitStatus(spec Spec) PieceStatus {
	if ns, err := s.netns(); err == nil && !ns.Host() {
		p := piece("unit", StateOff, "%s is not the host's, so nothing rebuilds its network at boot", ns)
		p.Fix = "run " + setupQuoted + " in it after each boot"
		return p
	}
	if !s.units.Available() {
		p := piece("unit", StateOff, "systemd is not running here, so nothing rebuilds the network at boot")
		p.Fix = "run " + setupQuoted + " after each boot"
		return p
	}
	rec, _ := s.ReadRecord()
	exe := s.exe
	if rec != nil && rec.Unit == "" {
		return piece("unit", StateMissing, "%s is not installed, so the network is gone after a reboot", UnitName)
	}
	ok, err := s.units.Check(UnitName, unitContent(exe, spec))
	switch {
	case err != nil:
		return piece("unit", StateUnknown, "%v", err)
	case !ok:
		return piece("unit", StateMissing, "%s is missing, outdated or disabled, so the network is gone after a reboot", UnitName)
	}
	return piece("unit", StateOK, "%s is enabled", UnitName)
}

// egressStatus reports whether spec's user's egress helper answers: an
// unprivileged daemon needs it to enforce network policies.
func (s *System) egressStatus(spec Spec) PieceStatus {
	if spec.UID == 0 {
		return piece("egress", StateOK, "a daemon running as root writes its egress tables itself; no helper is needed")
	}
	ns, err := s.netns()
	if err != nil {
		return piece("egress", StateUnknown, "%v", err)
	}
	socket := EgressHelperSocket(s.helperDir, spec.UID, ns)
	if err := s.pingHelper(socket); err == nil {
		return piece("egress", StateOK, "the egress helper answers at %s, so network policies are enforced", socket)
	}
	const why = "so the daemon refuses network policies none and allow, and full VMs are not kept from private ranges and link-local"
	if rec, _ := s.ReadRecord(); rec != nil && rec.EgressUnit != "" {
		p := piece("egress", StateWrong, "%s is installed but no egress helper answers at %s, %s", rec.EgressUnit, socket, why)
		p.Fix = "sudo systemctl restart " + rec.EgressUnit + "; see 'journalctl -u " + rec.EgressUnit + "'"
		return p
	}
	if !ns.Host() || !s.units.Available() {
		p := piece("egress", StateOff, "no egress helper answers at %s (no unit runs it here), %s", socket, why)
		p.Fix = "keep '" + egressHelperCommand(spec) + "' running"
		return p
	}
	return piece("egress", StateMissing, "no egress helper answers at %s, %s", socket, why)
}
