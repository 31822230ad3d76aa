package network

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// EgressDNS is what banger's DNS server needs to enforce allow-mode
// policies by name. A query from a VM in allow mode for a name outside
// vm. and the guest network's reverse zone is answered only when the name
// is on the VM's list: the server asks an upstream resolver, lets the VM
// reach the addresses in the answer (Learn) before replying, and answers
// everything else NXDOMAIN (Refused). Queries from anyone else are
// answered as before.
type EgressDNS interface {
	// PolicyOf returns the policy of the VM at addr; ok=false when addr
	// is no VM's.
	PolicyOf(addr netip.Addr) (p EgressPolicy, ok bool)
	// Learn lets vm reach ips for ttl; the answer is sent only after it
	// returns, so the VM's next connection finds them allowed.
	Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error
	// Refused tells that vm asked for name, which its policy does not
	// allow. name is from the guest: the implementation escapes it before
	// showing it and limits how often it records.
	Refused(vm netip.Addr, name string)
}

// maxLearned caps the addresses one answer may open.
const maxLearned = 32

// egressAnswer answers q for vm under p, returning false when the query
// is not the egress filter's (a name in banger's own zones).
func (h *dnsHandler) egressAnswer(ctx context.Context, m *dns.Msg, r *dns.Msg, vm netip.Addr, p EgressPolicy) bool {
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	if dns.IsSubDomain(Domain+".", name) || dns.IsSubDomain(h.revZone, name) {
		return false
	}
	if !p.AllowsName(name) || len(h.upstreams) == 0 {
		h.egress.Refused(vm, name)
		m.Rcode = dns.RcodeNameError
		return true
	}
	up, err := h.exchange(ctx, r)
	if err != nil {
		h.log.Warn("asking upstream dns", "name", name, "err", err)
		m.Rcode = dns.RcodeServerFailure
		return true
	}
	var ips []netip.Addr
	ttl := uint32(0)
	for _, rr := range up.Answer {
		var a netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(rr.AAAA)
		default:
			continue
		}
		if a.IsValid() && len(ips) < maxLearned {
			ips = append(ips, a)
			if ttl == 0 || rr.Header().Ttl < ttl {
				ttl = rr.Header().Ttl
			}
		}
	}
	if len(ips) > 0 {
		if err := h.egress.Learn(vm, ips, time.Duration(ttl)*time.Second); err != nil {
			h.log.Warn("letting a vm reach an allowed name's addresses", "vm", vm, "name", name, "err", err)
			m.Rcode = dns.RcodeServerFailure
			return true
		}
	}
	// A guest must not cache an address past the time it stays open.
	for _, rr := range up.Answer {
		if h := rr.Header(); h.Ttl > uint32(learnedMaxTTL/time.Second) {
			h.Ttl = uint32(learnedMaxTTL / time.Second)
		}
	}
	m.Rcode = up.Rcode
	m.Answer, m.Ns = up.Answer, up.Ns
	m.RecursionAvailable = true
	return true
}

// exchange asks the upstream resolvers in turn, over UDP then TCP when
// the answer was truncated.
func (h *dnsHandler) exchange(ctx context.Context, r *dns.Msg) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(r.Question[0].Name, r.Question[0].Qtype)
	q.RecursionDesired = true
	var err error
	for _, up := range h.upstreams {
		addr := up.String()
		var resp *dns.Msg
		resp, _, err = (&dns.Client{Timeout: dnsQueryMax}).ExchangeContext(ctx, q, addr)
		if err == nil && resp.Truncated {
			resp, _, err = (&dns.Client{Net: "tcp", Timeout: dnsQueryMax}).ExchangeContext(ctx, q, addr)
		}
		if err == nil {
			return resp, nil
		}
	}
	return nil, err
}
