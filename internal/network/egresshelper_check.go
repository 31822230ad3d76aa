package network

import (
	"fmt"
	"net/netip"
	"strings"

	"banger/api/errdefs"
)

// helperCheck is what the egress helper holds a user's requests against:
// the network 'system setup' made for that user, and the host's links (to
// see who owns a TAP). Nothing in a request names a bridge, a table or a
// chain: the helper derives them from the record, so a user reaches no
// other user's network.
type helperCheck struct {
	rec   Spec
	links Links
}

// spec is the egress spec of the user's network.
func (h helperCheck) spec() EgressSpec {
	return EgressSpec{Bridge: h.rec.Bridge, BridgeIP: h.rec.BridgeIP, CIDR: h.rec.CIDR.Masked(), DNSPort: DNSPort}
}

// sync checks a sync request: the daemon's spec is the record's, every
// address is a guest address of the user's CIDR (once), every policy
// parses as a user's would, every TAP is one of the user's pool, owned by
// the user, on the user's bridge (once).
func (h helperCheck) sync(req helperRequest) ([]VMEgress, error) {
	spec := h.spec()
	if req.Spec != nil {
		req.Spec.CIDR = req.Spec.CIDR.Masked()
	}
	if req.Spec == nil || *req.Spec != spec {
		return nil, errdefs.Conflict("the daemon's network (%s) is not the one set up for uid %d (%s); run %s after changing bridge_name, bridge_ip or cidr",
			describeSpec(req.Spec), h.rec.UID, describeSpec(&spec), setupQuoted)
	}
	if n := len(req.VMs); n > maxHelperVMs || n > guestAddrCount(spec.CIDR) {
		return nil, errdefs.Invalid("%d VMs in one sync; %s holds at most %d", n, spec.CIDR, min(maxHelperVMs, guestAddrCount(spec.CIDR)))
	}
	seen, tapSeen := map[netip.Addr]bool{}, map[string]bool{}
	out := make([]VMEgress, 0, len(req.VMs))
	for _, v := range req.VMs {
		if err := h.guestAddr(v.Addr); err != nil {
			return nil, err
		}
		if seen[v.Addr] {
			return nil, errdefs.Invalid("address %s is listed twice", v.Addr)
		}
		seen[v.Addr] = true
		p, err := ParseEgressPolicy(string(v.Policy.Mode), v.Policy.Allow, v.Policy.AllowLAN)
		if err != nil {
			return nil, fmt.Errorf("policy of %s: %w", v.Addr, err)
		}
		if v.Tap != "" {
			if err := h.userTap(v.Tap); err != nil {
				return nil, err
			}
			if tapSeen[v.Tap] {
				return nil, errdefs.Invalid("tap %q is bound to two addresses", printableName(v.Tap))
			}
			tapSeen[v.Tap] = true
		}
		out = append(out, VMEgress{Addr: v.Addr, Policy: p, Tap: v.Tap})
	}
	return out, nil
}

// learn checks a learn request: a guest address of the user's CIDR, at
// most maxLearned IPv4 addresses.
func (h helperCheck) learn(req helperRequest) error {
	if err := h.guestAddr(req.VM); err != nil {
		return err
	}
	if len(req.IPs) > maxLearned {
		return errdefs.Invalid("%d addresses in one answer; at most %d", len(req.IPs), maxLearned)
	}
	for _, a := range req.IPs {
		if !a.Is4() {
			return errdefs.Invalid("learned address %s is not IPv4", a)
		}
	}
	if req.TTL < 0 {
		return errdefs.Invalid("negative ttl %d", req.TTL)
	}
	return nil
}

func (h helperCheck) guestAddr(a netip.Addr) error {
	cidr := h.rec.CIDR.Masked()
	switch {
	case !a.Is4() || !cidr.Contains(a):
		return errdefs.Invalid("address %s is not in %s, the network set up for uid %d", a, cidr, h.rec.UID)
	case a == h.rec.BridgeIP || a == cidr.Addr() || a == prefixEnd(cidr):
		return errdefs.Invalid("address %s is the bridge's, the network's or its broadcast address, not a guest's", a)
	}
	return nil
}

// userTap checks that name is a TAP of the user's pool that the user owns
// and that sits on the user's bridge.
func (h helperCheck) userTap(name string) error {
	i, ok := tapIndex(h.rec.Bridge, name)
	if !ok || i >= h.rec.Taps {
		return errdefs.Invalid("%q is not one of the %d taps of %s", printableName(name), h.rec.Taps, h.rec.Bridge)
	}
	l, err := h.links.Link(name)
	if err != nil {
		return errdefs.Invalid("tap %s: %v", name, err)
	}
	if l.Tap == nil || !l.Tap.TAP || l.Tap.Owner != h.rec.UID || l.Master != h.rec.Bridge {
		return errdefs.Invalid("tap %s is not a tap of uid %d on %s; run %s", name, h.rec.UID, h.rec.Bridge, setupQuoted)
	}
	return nil
}

func describeSpec(s *EgressSpec) string {
	if s == nil {
		return "none given"
	}
	return fmt.Sprintf("bridge %s, %s on %s, dns port %d", printableName(s.Bridge), s.BridgeIP, s.CIDR, s.DNSPort)
}

// printableName keeps a name from a request safe for an error message.
func printableName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
