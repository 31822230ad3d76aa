package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"banger/internal/config"
)

// Domain is the DNS zone VMs are named in: a VM called web is web.vm.
const Domain = "vm"

// DNSPort is where the daemon's DNS server listens on bridge_ip. Port 53
// needs privilege the daemon does not have, so banger's nftables table
// forwards bridge_ip:53 here; resolvers use plain bridge_ip.
const DNSPort = 1053

// DNSAddr is where the daemon serves DNS for cfg.
func DNSAddr(cfg config.Config) netip.AddrPort { return netip.AddrPortFrom(cfg.BridgeIP, DNSPort) }

// TTLs: short, because names come and go with VMs.
const (
	dnsTTL      = 5 // answers
	dnsNegTTL   = 5 // NXDOMAIN and no-data answers (SOA minimum)
	dnsQueryMax = 2 * time.Second
)

// Resolver answers for the VMs the daemon knows. IPAM implements it from
// the lease table; the daemon may wrap it (say, to answer only for running
// VMs).
type Resolver interface {
	// AddrOf returns the address of the VM called name (a lowercase DNS
	// label), or ok=false when there is none.
	AddrOf(ctx context.Context, name string) (addr netip.Addr, ok bool, err error)
	// NameOf returns the name of the VM holding addr, or ok=false.
	NameOf(ctx context.Context, addr netip.Addr) (name string, ok bool, err error)
}

// DNSOptions are what ListenDNS needs.
type DNSOptions struct {
	// Addr is where to listen, over UDP and TCP: DNSAddr(cfg) in the
	// daemon. Port 0 picks a free port (tests). Binding does not wait for
	// the address to exist (IP_FREEBIND), so the daemon may start before
	// 'banger system setup' has made the bridge.
	Addr netip.AddrPort
	// Resolver answers names and addresses.
	Resolver Resolver
	// CIDR is the guest network; its in-addr.arpa zone is answered.
	CIDR netip.Prefix
	// Logger receives per-query failures; nil discards them.
	Logger *slog.Logger
	// Egress enforces allow-mode policies by name (optional); Upstreams
	// are the resolvers it asks for allowed names (default_dns, port 53).
	Egress    EgressDNS
	Upstreams []netip.AddrPort
}

// DNSServer answers <vm>.vm (A) and the guest network's reverse zone (PTR),
// authoritatively and nothing else: NXDOMAIN for unknown VMs, REFUSED for
// any other name (it never recurses, so it cannot be used to amplify or to
// reach the outside) — but for a VM in allow mode, whose listed names it
// asks of the upstream resolvers (DNSOptions.Egress).
type DNSServer struct {
	addr    netip.AddrPort
	servers []*dns.Server
	done    sync.WaitGroup
}

// ListenDNS starts a DNS server; Close stops it.
func ListenDNS(o DNSOptions) (*DNSServer, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &dnsHandler{res: o.Resolver, cidr: o.CIDR.Masked(), log: o.Logger, egress: o.Egress, upstreams: o.Upstreams}
	h.revZone, h.revBits = reverseZone(h.cidr)
	pc, ln, err := listenBoth(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening for DNS on %s: %w", o.Addr, err)
	}
	s := &DNSServer{addr: netip.AddrPortFrom(o.Addr.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		s.servers = append(s.servers, srv)
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			if err := srv.ActivateAndServe(); err != nil {
				o.Logger.Warn("dns server stopped", "addr", s.addr, "err", err)
			}
		}()
		<-started
	}
	return s, nil
}

// Addr is the address the server answers on (UDP and TCP).
func (s *DNSServer) Addr() netip.AddrPort { return s.addr }

// Close stops the server and waits for it.
func (s *DNSServer) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown())
	}
	s.done.Wait()
	return errors.Join(errs...)
}

// ProbeDNS asks the DNS server at server (host:port) for the SOA of the
// vm. zone and returns nil when banger's DNS answered it, directly or
// through a resolver that routes *.vm to it.
func ProbeDNS(ctx context.Context, server string) error {
	m := new(dns.Msg).SetQuestion(Domain+".", dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: dnsQueryMax}).ExchangeContext(ctx, m, server)
	if err != nil {
		return fmt.Errorf("asking %s for the %s. zone: %w", server, Domain, err)
	}
	if len(r.Answer) == 1 {
		if soa, ok := r.Answer[0].(*dns.SOA); ok && soa.Ns == Domain+"." && soa.Mbox == "hostmaster."+Domain+"." {
			return nil
		}
	}
	return fmt.Errorf("%s answered %s for the %s. zone, not banger's SOA", server, dns.RcodeToString[r.Rcode], Domain)
}

// listenBoth opens UDP and TCP on the same port; with port 0 it retries
// until a port free for UDP is also free for TCP.
func listenBoth(ap netip.AddrPort) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: freeBind}
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp4", ap.String())
		if err != nil {
			return nil, nil, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := lc.Listen(ctx, "tcp4", net.JoinHostPort(ap.Addr().String(), strconv.Itoa(port)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 || attempt == 10 {
			return nil, nil, err
		}
	}
}

func freeBind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	})
	return errors.Join(err, serr)
}

type dnsHandler struct {
	res     Resolver
	cidr    netip.Prefix
	revZone string // in-addr.arpa zone covering cidr, cut to whole octets
	revBits int    // prefix length of revZone
	log     *slog.Logger

	egress    EgressDNS
	upstreams []netip.AddrPort
}

func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case r.Question[0].Qclass != dns.ClassINET && r.Question[0].Qclass != dns.ClassANY:
		m.Rcode = dns.RcodeRefused
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 2*dnsQueryMax)
		if vm, p, ok := h.allowMode(w); !ok || !h.egressAnswer(ctx, m, r, vm, p) {
			h.answer(ctx, m, r.Question[0])
		}
		cancel()
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
		size = int(max(opt.UDPSize(), dns.MinMsgSize))
	}
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("writing dns reply", "err", err)
	}
}

// allowMode reports whether the query comes from a VM in allow mode.
func (h *dnsHandler) allowMode(w dns.ResponseWriter) (netip.Addr, EgressPolicy, bool) {
	if h.egress == nil {
		return netip.Addr{}, EgressPolicy{}, false
	}
	var src netip.Addr
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		src = a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		src = a.AddrPort().Addr().Unmap()
	}
	if !h.cidr.Contains(src) {
		return netip.Addr{}, EgressPolicy{}, false
	}
	p, ok := h.egress.PolicyOf(src)
	return src, p, ok && p.Mode == EgressAllow
}

func (h *dnsHandler) answer(ctx context.Context, m *dns.Msg, q dns.Question) {
	name := dns.CanonicalName(q.Name)
	var err error
	switch {
	case dns.IsSubDomain(Domain+".", name):
		m.Authoritative = true
		err = h.forward(ctx, m, q, name)
	case dns.IsSubDomain(h.revZone, name):
		m.Authoritative = true
		err = h.reverse(ctx, m, q, name)
	default:
		m.Rcode = dns.RcodeRefused
	}
	if err != nil {
		h.log.Warn("answering dns query", "name", name, "err", err)
		m.Answer, m.Ns = nil, nil
		m.Rcode = dns.RcodeServerFailure
	}
}

// forward answers names under vm.: the apex, then single labels.
func (h *dnsHandler) forward(ctx context.Context, m *dns.Msg, q dns.Question, name string) error {
	apex := Domain + "."
	if name == apex {
		h.noData(m, q, apex)
		return nil
	}
	label := strings.TrimSuffix(name, "."+apex)
	if strings.Contains(label, ".") {
		h.nxdomain(m, apex)
		return nil
	}
	addr, ok, err := h.res.AddrOf(ctx, label)
	if err != nil || !ok {
		h.nxdomain(m, apex)
		return err
	}
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
		h.noData(m, q, apex)
		return nil
	}
	m.Answer = append(m.Answer, &dns.A{Hdr: h.hdr(name, dns.TypeA), A: addr.AsSlice()})
	return nil
}

// reverse answers names under the guest network's in-addr.arpa zone.
func (h *dnsHandler) reverse(ctx context.Context, m *dns.Msg, q dns.Question, name string) error {
	addr, octets, ok := parseReverse(name)
	if !ok {
		h.nxdomain(m, h.revZone)
		return nil
	}
	if !netip.PrefixFrom(addr, octets*8).Overlaps(h.cidr) {
		// In the enclosing octet zone but outside cidr (say cidr is a
		// /20): not banger's to answer.
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return nil
	}
	if octets < 4 { // the zone apex, or an empty non-terminal inside it
		h.noData(m, q, h.revZone)
		return nil
	}
	vm, ok, err := h.res.NameOf(ctx, addr)
	if err != nil || !ok {
		h.nxdomain(m, h.revZone)
		return err
	}
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		h.noData(m, q, h.revZone)
		return nil
	}
	m.Answer = append(m.Answer, &dns.PTR{Hdr: h.hdr(name, dns.TypePTR), Ptr: dns.Fqdn(vm + "." + Domain)})
	return nil
}

func (h *dnsHandler) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
}

func (h *dnsHandler) soa(zone string) *dns.SOA {
	return &dns.SOA{Hdr: h.hdr(zone, dns.TypeSOA), Ns: Domain + ".", Mbox: "hostmaster." + Domain + ".",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: dnsNegTTL}
}

// noData answers "the name exists, not with that type"; at a zone apex an
// SOA query gets the SOA.
func (h *dnsHandler) noData(m *dns.Msg, q dns.Question, zone string) {
	if dns.CanonicalName(q.Name) == zone && (q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, h.soa(zone))
		return
	}
	m.Ns = append(m.Ns, h.soa(zone))
}

func (h *dnsHandler) nxdomain(m *dns.Msg, zone string) {
	m.Rcode = dns.RcodeNameError
	m.Ns = append(m.Ns, h.soa(zone))
}

// reverseZone is the in-addr.arpa zone holding p, cut to whole octets:
// 172.16.0.0/24 -> 0.16.172.in-addr.arpa., 10.1.0.0/20 -> 1.10.in-addr.arpa.
func reverseZone(p netip.Prefix) (string, int) {
	octets := p.Bits() / 8
	a := p.Addr().As4()
	labels := make([]string, 0, octets+2)
	for i := octets - 1; i >= 0; i-- {
		labels = append(labels, strconv.Itoa(int(a[i])))
	}
	labels = append(labels, "in-addr", "arpa")
	return strings.Join(labels, ".") + ".", octets * 8
}

// parseReverse reads a name under in-addr.arpa into the address it names
// and how many octets it gives (4 for a full address); ok=false for a
// malformed name.
func parseReverse(name string) (addr netip.Addr, octets int, ok bool) {
	rest, found := strings.CutSuffix(name, "in-addr.arpa.")
	if !found {
		return netip.Addr{}, 0, false
	}
	labels := dns.SplitDomainName(rest)
	if len(labels) > 4 {
		return netip.Addr{}, 0, false
	}
	var b [4]byte
	for i, l := range labels {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > 255 || (len(l) > 1 && l[0] == '0') {
			return netip.Addr{}, 0, false
		}
		b[len(labels)-1-i] = byte(n)
	}
	return netip.AddrFrom4(b), len(labels), true
}
