package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"banger/internal/config"
)

// startDNS serves the IPAM's names on 127.0.0.1 at a free port.
func startDNS(t *testing.T, res Resolver) string {
	t.Helper()
	s, err := ListenDNS(DNSOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Resolver: res, CIDR: config.Default().CIDR})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing dns server: %v", err)
		}
	})
	return s.Addr().String()
}

func query(t *testing.T, addr, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype) // sets RD, as stub resolvers do
	c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], netw, err)
	}
	if r.RecursionAvailable {
		t.Errorf("%s: RA=1; the server never recurses", name)
	}
	return r
}

func TestDNSAnswers(t *testing.T) {
	ipam := NewIPAM(newMemStore(), config.Default())
	allocate(t, ipam, "web") // 172.16.0.2
	addr := startDNS(t, ipam)

	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string // the one answer's data; "" for none
		soa    bool   // SOA in the authority section
	}{
		{"web.vm.", dns.TypeA, dns.RcodeSuccess, "172.16.0.2", false},
		{"WEB.Vm.", dns.TypeA, dns.RcodeSuccess, "172.16.0.2", false},
		{"web.vm.", dns.TypeAAAA, dns.RcodeSuccess, "", true},
		{"2.0.16.172.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "web.vm.", false},
		{"3.0.16.172.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", true},
		{"0.16.172.in-addr.arpa.", dns.TypeSOA, dns.RcodeSuccess, "soa", false},
		{"nope.vm.", dns.TypeA, dns.RcodeNameError, "", true},
		{"a.web.vm.", dns.TypeA, dns.RcodeNameError, "", true},
		{"vm.", dns.TypeSOA, dns.RcodeSuccess, "soa", false},
		{"vm.", dns.TypeA, dns.RcodeSuccess, "", true},
		{"example.com.", dns.TypeA, dns.RcodeRefused, "", false},
		{"vm.example.com.", dns.TypeA, dns.RcodeRefused, "", false},
		{"1.1.1.1.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, "", false},
		{".", dns.TypeNS, dns.RcodeRefused, "", false},
	} {
		for _, netw := range []string{"udp", "tcp"} {
			r := query(t, addr, netw, tc.name, tc.qtype)
			label := tc.name + " " + dns.TypeToString[tc.qtype] + "/" + netw
			if r.Rcode != tc.rcode {
				t.Errorf("%s: rcode %s, want %s", label, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if want := tc.rcode != dns.RcodeRefused; r.Authoritative != want {
				t.Errorf("%s: AA=%v, want %v", label, r.Authoritative, want)
			}
			switch {
			case tc.answer == "" && len(r.Answer) != 0:
				t.Errorf("%s: answers %v, want none", label, r.Answer)
			case tc.answer != "" && len(r.Answer) != 1:
				t.Errorf("%s: answers %v, want one", label, r.Answer)
			case tc.answer != "":
				var got string
				switch rr := r.Answer[0].(type) {
				case *dns.A:
					got = rr.A.String()
				case *dns.PTR:
					got = rr.Ptr
				case *dns.SOA:
					got = "soa"
				}
				if got != tc.answer {
					t.Errorf("%s: answer %v, want %s", label, r.Answer[0], tc.answer)
				}
			}
			if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soa {
				t.Errorf("%s: authority %v, want SOA=%v", label, r.Ns, tc.soa)
			}
		}
	}
}

func TestDNSFollowsVMsComingAndGoing(t *testing.T) {
	ctx := context.Background()
	ipam := NewIPAM(newMemStore(), config.Default())
	addr := startDNS(t, ipam)
	lookup := func(name string) (int, string) {
		r := query(t, addr, "udp", name+".vm.", dns.TypeA)
		if len(r.Answer) == 1 {
			return r.Rcode, r.Answer[0].(*dns.A).A.String()
		}
		return r.Rcode, ""
	}
	if rc, _ := lookup("app"); rc != dns.RcodeNameError {
		t.Fatalf("app before it exists: %s", dns.RcodeToString[rc])
	}
	allocate(t, ipam, "app")
	if rc, a := lookup("app"); rc != dns.RcodeSuccess || a != "172.16.0.2" {
		t.Fatalf("app after create: %s %s", dns.RcodeToString[rc], a)
	}
	if err := ipam.Release(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if rc, _ := lookup("app"); rc != dns.RcodeNameError {
		t.Errorf("app after delete: %s, want NXDOMAIN", dns.RcodeToString[rc])
	}
	allocate(t, ipam, "db")
	if rc, a := lookup("db"); rc != dns.RcodeSuccess || a != "172.16.0.3" {
		t.Errorf("db: %s %s, want 172.16.0.3 (172.16.0.2 was just released)", dns.RcodeToString[rc], a)
	}
	r := query(t, addr, "udp", "3.0.16.172.in-addr.arpa.", dns.TypePTR)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "db.vm." {
		t.Errorf("PTR of 172.16.0.3 = %v, want db.vm.", r.Answer)
	}
}

type failingResolver struct{}

func (failingResolver) AddrOf(context.Context, string) (netip.Addr, bool, error) {
	return netip.Addr{}, false, errors.New("database is locked")
}
func (failingResolver) NameOf(context.Context, netip.Addr) (string, bool, error) {
	return "", false, errors.New("database is locked")
}

func TestDNSServerFailureAndProtocolEdges(t *testing.T) {
	addr := startDNS(t, failingResolver{})
	if r := query(t, addr, "udp", "web.vm.", dns.TypeA); r.Rcode != dns.RcodeServerFailure || len(r.Ns) != 0 {
		t.Errorf("lookup with a failing resolver: %s %v, want SERVFAIL", dns.RcodeToString[r.Rcode], r.Ns)
	}

	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("web.vm.", dns.TypeA)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.IsEdns0() == nil {
		t.Error("EDNS query answered without OPT")
	}

	m = new(dns.Msg)
	m.SetNotify("vm.")
	r, _, err = c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
}

func TestReverseZone(t *testing.T) {
	for _, tc := range []struct{ cidr, zone string }{
		{"172.16.0.0/24", "0.16.172.in-addr.arpa."},
		{"10.1.0.0/20", "1.10.in-addr.arpa."},
		{"10.1.0.0/16", "1.10.in-addr.arpa."},
		{"192.168.7.8/29", "7.168.192.in-addr.arpa."},
	} {
		if got, _ := reverseZone(netip.MustParsePrefix(tc.cidr).Masked()); got != tc.zone {
			t.Errorf("reverseZone(%s) = %s, want %s", tc.cidr, got, tc.zone)
		}
	}
}

func TestProbeDNS(t *testing.T) {
	ctx := context.Background()
	ours := startDNS(t, NewIPAM(newMemStore(), config.Default()))
	if err := ProbeDNS(ctx, ours); err != nil {
		t.Errorf("ProbeDNS(banger's server): %v", err)
	}
	// Any other server, such as an upstream resolver that does not know .vm.
	other := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeNameError))
	})}
	started := make(chan struct{})
	other.NotifyStartedFunc = func() { close(started) }
	go other.ListenAndServe()
	<-started
	defer other.Shutdown()
	if err := ProbeDNS(ctx, other.PacketConn.LocalAddr().String()); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("ProbeDNS(another server) = %v, want an error naming its NXDOMAIN", err)
	}
}

func TestDNSReverseZoneOfAnUnalignedCIDR(t *testing.T) {
	cfg := smallNet("10.1.0.0/20", "10.1.0.1")
	ipam := NewIPAM(newMemStore(), cfg)
	allocate(t, ipam, "web") // 10.1.0.2
	s, err := ListenDNS(DNSOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Resolver: ipam, CIDR: cfg.CIDR})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]int{
		"2.0.1.10.in-addr.arpa.":  dns.RcodeSuccess,   // web
		"9.15.1.10.in-addr.arpa.": dns.RcodeNameError, // inside the /20, no VM
		"5.20.1.10.in-addr.arpa.": dns.RcodeRefused,   // same /16 zone, outside the /20
		"20.1.10.in-addr.arpa.":   dns.RcodeRefused,
		"3.1.10.in-addr.arpa.":    dns.RcodeSuccess, // inside: no data
		"x.0.1.10.in-addr.arpa.":  dns.RcodeNameError,
	} {
		r := query(t, s.Addr().String(), "udp", name, dns.TypePTR)
		if r.Rcode != want {
			t.Errorf("%s PTR: %s, want %s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}
}
