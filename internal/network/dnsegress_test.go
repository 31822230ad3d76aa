package network

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"banger/internal/config"
)

// fakeEgress is the daemon's side of EgressDNS: one VM at 127.0.0.1 (the
// test's queries come from there) with a fixed policy.
type fakeEgress struct {
	mu      sync.Mutex
	policy  EgressPolicy
	learned map[netip.Addr]time.Duration
	refused []string
}

func (f *fakeEgress) PolicyOf(a netip.Addr) (EgressPolicy, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policy, a == netip.MustParseAddr("127.0.0.1")
}

func (f *fakeEgress) Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ip := range ips {
		f.learned[ip] = ttl
	}
	return nil
}

func (f *fakeEgress) Refused(vm netip.Addr, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = append(f.refused, name)
}

// startUpstream is a resolver that knows allowed.test, denied.test and
// a CNAME from cdn.allowed.test to elsewhere.test.
func startUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	zone := map[string][]dns.RR{}
	for _, s := range []string{
		"allowed.test. 30 IN A 198.51.100.10",
		"allowed.test. 30 IN A 198.51.100.11",
		"allowed.test. 7200 IN AAAA 2001:db8::10",
		"denied.test. 300 IN A 203.0.113.66",
		"cdn.allowed.test. 600 IN CNAME elsewhere.test.",
		"elsewhere.test. 20 IN A 198.51.100.77",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		zone[rr.Header().Name] = append(zone[rr.Header().Name], rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		name := dns.CanonicalName(r.Question[0].Name)
		rrs, ok := zone[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype == r.Question[0].Qtype || rr.Header().Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
				if c, ok := rr.(*dns.CNAME); ok {
					m.Answer = append(m.Answer, zone[c.Target]...)
				}
			}
		}
		w.WriteMsg(m)
	})
	pc, ln, err := listenBoth(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return pc.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
}

func TestDNSAllowModeAnswersOnlyAllowedNames(t *testing.T) {
	ipam := NewIPAM(newMemStore(), config.Default())
	allocate(t, ipam, "web")
	p, err := ParseEgressPolicy("allow", []string{"allowed.test", "*.allowed.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	eg := &fakeEgress{policy: p, learned: map[netip.Addr]time.Duration{}}
	s, err := ListenDNS(DNSOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Resolver: ipam,
		CIDR: netip.MustParsePrefix("127.0.0.0/24"), Egress: eg, Upstreams: []netip.AddrPort{startUpstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg).SetQuestion(name, qtype)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.Addr().String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	r := ask("ALLOWED.test.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("allowed.test: %v", r)
	}
	r = ask("cdn.allowed.test.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("cdn.allowed.test: %v", r)
	}
	// The guest may not cache the 7200 s record past the hour its address stays open.
	if r := ask("allowed.test.", dns.TypeAAAA); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 3600 {
		t.Errorf("allowed.test AAAA: %v; want one record with its TTL capped at 3600", r)
	}
	for _, name := range []string{"denied.test.", "elsewhere.test.", "test."} {
		if r := ask(name, dns.TypeA); r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s, %d answers; want NXDOMAIN and none", name, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	// banger's own zone is still answered.
	if r := ask("web.vm.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("web.vm: %v", r)
	}
	eg.mu.Lock()
	defer eg.mu.Unlock()
	want := map[netip.Addr]time.Duration{
		netip.MustParseAddr("198.51.100.10"): 30 * time.Second, // the lowest TTL of the answer
		netip.MustParseAddr("198.51.100.11"): 30 * time.Second,
		netip.MustParseAddr("198.51.100.77"): 20 * time.Second, // through the CNAME
		netip.MustParseAddr("2001:db8::10"):  7200 * time.Second,
	}
	for a, ttl := range want {
		if eg.learned[a] != ttl {
			t.Errorf("learned %s for %v, want %v (all: %v)", a, eg.learned[a], ttl, eg.learned)
		}
	}
	if _, ok := eg.learned[netip.MustParseAddr("203.0.113.66")]; ok {
		t.Error("denied.test's address was learned")
	}
	if !slices.Equal(eg.refused, []string{"denied.test.", "elsewhere.test.", "test."}) {
		t.Errorf("refused = %q", eg.refused)
	}
}

func TestDNSNotAllowModeUnchanged(t *testing.T) {
	eg := &fakeEgress{policy: EgressPolicy{Mode: EgressFull}, learned: map[netip.Addr]time.Duration{}}
	s, err := ListenDNS(DNSOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Resolver: NewIPAM(newMemStore(), config.Default()),
		CIDR: netip.MustParsePrefix("127.0.0.0/24"), Egress: eg, Upstreams: []netip.AddrPort{startUpstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := query(t, s.Addr().String(), "udp", "allowed.test.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("a full-mode VM's query for another name: %s, want REFUSED (banger's DNS never recurses for it)", dns.RcodeToString[r.Rcode])
	}
}
