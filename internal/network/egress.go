package network

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"banger/api/errdefs"
)

// EgressMode is what a VM may reach beyond the always-denied ranges.
type EgressMode string

const (
	// EgressFull: everything but the always-denied ranges.
	EgressFull EgressMode = "full"
	// EgressNone: nothing; the host still reaches the guest (vm ssh) and
	// the agent path (vsock or serial) is not IP at all.
	EgressNone EgressMode = "none"
	// EgressAllow: only the names and CIDRs on the policy's list. Names
	// are enforced through banger's DNS server: it answers only allowed
	// names, and the addresses it returns are let through for the
	// record's TTL.
	EgressAllow EgressMode = "allow"
)

// Limits on a policy: it comes from a user, but it also becomes nftables
// objects and is matched against every DNS query.
const (
	maxAllowEntries = 256
	// The time a learned address stays allowed: the record's TTL, within
	// these bounds (a TTL of 0 would make the connection after the lookup
	// race the set's expiry; a day-long TTL would keep an address open
	// long after the name moved).
	learnedMinTTL = 60 * time.Second
	learnedMaxTTL = time.Hour
)

// AlwaysDenied are the destinations no guest reaches unless its policy
// says AllowLAN: private and carrier-grade NAT ranges, link-local
// (cloud metadata services live at 169.254.169.254) and loopback.
// banger's own CIDR is exempt (the bridge's DNS); the host's own
// addresses are guarded separately (input hook).
var AlwaysDenied = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// AlwaysDenied6 is AlwaysDenied for IPv6: unique-local and link-local.
var AlwaysDenied6 = []netip.Prefix{
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// EgressPolicy is one VM's network policy.
type EgressPolicy struct {
	Mode EgressMode `json:"mode"`
	// Allow lists what an allow-mode VM may reach: DNS names (lowercase,
	// no trailing dot; "*.example.org" matches every name under
	// example.org but not example.org itself) and IPv4 CIDRs or
	// addresses. Kept sorted and unique.
	Allow []string `json:"allow,omitempty"`
	// AllowLAN lifts the always-deny list: private ranges, link-local,
	// other VMs and the host's own addresses become reachable (as far as
	// Mode allows).
	AllowLAN bool `json:"allow_lan,omitempty"`
}

// ParseEgressPolicy checks and normalises a policy from user input: an
// unknown mode, an allow list outside allow mode, or an entry that is
// neither a name nor a CIDR is an invalid error saying what to write.
func ParseEgressPolicy(mode string, allow []string, allowLAN bool) (EgressPolicy, error) {
	p := EgressPolicy{Mode: EgressMode(strings.ToLower(strings.TrimSpace(mode))), AllowLAN: allowLAN}
	if p.Mode == "" {
		p.Mode = EgressFull
	}
	switch p.Mode {
	case EgressFull, EgressNone, EgressAllow:
	default:
		return EgressPolicy{}, errdefs.Invalid("network policy %q is not one of full, none, allow", mode)
	}
	if len(allow) > 0 && p.Mode != EgressAllow {
		return EgressPolicy{}, errdefs.Invalid("--allow needs --network allow (the policy is %s)", p.Mode)
	}
	if len(allow) > maxAllowEntries {
		return EgressPolicy{}, errdefs.Invalid("%d --allow entries; at most %d", len(allow), maxAllowEntries)
	}
	for _, a := range allow {
		e, err := normaliseAllow(a)
		if err != nil {
			return EgressPolicy{}, err
		}
		p.Allow = append(p.Allow, e)
	}
	slices.Sort(p.Allow)
	p.Allow = slices.Compact(p.Allow)
	return p, nil
}

func normaliseAllow(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "/:") || isDottedQuad(s) {
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			return "", errdefs.Invalid("--allow %q: not an IPv4 address or CIDR (%v); write e.g. 203.0.113.0/24 or a name like registry.npmjs.org", s, err)
		}
		return p.String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	rest, wild := strings.CutPrefix(name, "*.")
	if !validDNSName(rest) {
		return "", errdefs.Invalid("--allow %q: not a DNS name, a *.domain wildcard or an IPv4 CIDR", s)
	}
	if wild && !strings.Contains(rest, ".") {
		return "", errdefs.Invalid("--allow %q: a wildcard must name a domain with at least two labels (like *.npmjs.org)", s)
	}
	return name, nil
}

func isDottedQuad(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Prefix{}, fmt.Errorf("only IPv4 is routed to guests")
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("only IPv4 is routed to guests")
	}
	return p.Masked(), nil
}

// validDNSName accepts LDH labels of 1..63 bytes, 253 in all.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Prefixes are the CIDRs on the allow list.
//
// A prefix inside another on the list is left out: an interval set
// refuses overlapping elements.
func (p EgressPolicy) Prefixes() []netip.Prefix {
	var all []netip.Prefix
	for _, a := range p.Allow {
		if pr, err := netip.ParsePrefix(a); err == nil {
			all = append(all, pr)
		}
	}
	var out []netip.Prefix
	for i, pr := range all {
		inside := false
		for j, o := range all {
			if i != j && o.Bits() < pr.Bits() && o.Contains(pr.Addr()) {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, pr)
		}
	}
	return out
}

// AllowsName reports whether name (any case, trailing dot or not) is on
// the allow list: exactly, or under a *.domain wildcard.
func (p EgressPolicy) AllowsName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, a := range p.Allow {
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(name, "."+rest) {
				return true
			}
		} else if a == name {
			return true
		}
	}
	return false
}

// String is how vm show prints the policy.
func (p EgressPolicy) String() string {
	s := string(p.Mode)
	if p.Mode == "" {
		s = string(EgressFull)
	}
	if len(p.Allow) > 0 {
		s += " (" + strings.Join(p.Allow, ", ") + ")"
	}
	if p.AllowLAN {
		s += ", LAN allowed"
	}
	return s
}

// digest identifies the rules a policy makes for addr; it is written
// into the VM's chain so that a daemon restart finds a chain already
// right and leaves it (and the addresses it learned) alone.
func (p EgressPolicy) digest(addr netip.Addr) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1 %s %s %v %s", addr, p.Mode, p.AllowLAN, strings.Join(p.Allow, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// VMEgress is one VM's policy at its address.
type VMEgress struct {
	Addr   netip.Addr
	Policy EgressPolicy
	// Tap is the TAP the VM holds while it runs ("" when stopped). IPv4
	// and ARP entering the bridge from one of banger's TAPs must carry
	// the address of the VM holding that TAP: a guest that takes another
	// VM's address must not get that VM's policy. Traffic from a TAP no
	// VM holds is dropped.
	Tap string
}

// EgressSpec is the network the policy rules guard.
type EgressSpec struct {
	Bridge   string
	BridgeIP netip.Addr
	CIDR     netip.Prefix
	DNSPort  uint16
}

// Denial is what a VM's deny counter counted since it was last read.
type Denial struct {
	Addr    netip.Addr
	Packets uint64
}

// Egress manages banger's egress table (EgressTable, families inet and
// bridge) in the calling thread's network namespace. It is separate from
// the NAT table that 'system setup' owns, so setup can rewrite that one
// without dropping the daemon's per-VM rules.
type Egress interface {
	// Sync makes the tables hold spec's base rules and exactly vms'
	// policies. A VM whose rules already match its policy is left as it
	// is, with the addresses it learned; others are rebuilt; VMs not in
	// vms lose their rules. Running it twice changes nothing.
	Sync(spec EgressSpec, vms []VMEgress) error
	// Learn lets vm reach ips for ttl (clamped to learnedMinTTL ..
	// learnedMaxTTL), as banger's DNS server answered them. A VM that is
	// not in allow mode is ignored.
	Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error
	// Denied reads and resets every VM's deny counter, returning those
	// that counted something.
	Denied() ([]Denial, error)
	// Remove deletes the tables, reporting whether they existed.
	Remove() (bool, error)
}

func clampTTL(ttl time.Duration) time.Duration {
	return min(max(ttl, learnedMinTTL), learnedMaxTTL)
}
