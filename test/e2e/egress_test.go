//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The fake internet: a namespace behind the test namespace's uplink, with
// public-looking addresses (on its loopback) for DNS and web servers, a
// "LAN" server on a private address and a "metadata" server on
// link-local. Nothing leaves the test's namespaces.
const (
	inetUplinkHost = "198.18.0.1" // the test namespace's end of the uplink
	inetUplinkFar  = "198.18.0.2"
	inetDNS        = "198.51.100.53" // default_dns of the test's guests
	inetOtherDNS   = "198.51.100.54" // another resolver, answering anything
	inetAllowed    = "198.51.100.10" // allowed.test
	inetDenied     = "203.0.113.10"  // denied.test
	inetLAN        = "10.250.0.9"
	inetMetadata   = "169.254.169.254"
	otherDNSAnswer = "198.51.100.99"
)

type internet struct {
	name string
}

func newInternet(t *testing.T, e *env) *internet {
	t.Helper()
	in := &internet{name: e.ns.Name + "-inet"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", in.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", in.name).Run() })
	veth := fmt.Sprintf("bgin%d", time.Now().UnixNano()%100000)
	run("-n", e.ns.Name, "link", "add", veth, "type", "veth", "peer", "name", "uplink", "netns", in.name)
	run("-n", e.ns.Name, "addr", "add", inetUplinkHost+"/30", "dev", veth)
	run("-n", e.ns.Name, "link", "set", veth, "up")
	run("-n", e.ns.Name, "route", "add", "default", "via", inetUplinkFar)
	run("-n", in.name, "addr", "add", inetUplinkFar+"/30", "dev", "uplink")
	run("-n", in.name, "link", "set", "uplink", "up")
	run("-n", in.name, "link", "set", "lo", "up")
	for _, a := range []string{inetDNS, inetOtherDNS, inetAllowed, inetDenied, inetLAN, inetMetadata} {
		run("-n", in.name, "addr", "add", a+"/32", "dev", "lo")
	}
	// Replies to the masqueraded guests go back over the uplink.
	run("-n", in.name, "route", "add", "default", "via", inetUplinkHost)

	zone := map[string]string{"allowed.test.": inetAllowed, "denied.test.": inetDenied}
	in.dns(t, inetDNS, func(name string) (string, bool) { a, ok := zone[name]; return a, ok })
	in.dns(t, inetOtherDNS, func(string) (string, bool) { return otherDNSAnswer, true })
	for _, a := range []string{inetAllowed, inetDenied, inetLAN, inetMetadata} {
		in.web(t, a+":80", "hello from "+a)
	}
	in.web(t, inetOtherDNS+":853", "dns over tls stand-in")
	return in
}

func (in *internet) listen(t *testing.T, netw, addr string) (ln net.Listener, pc net.PacketConn) {
	t.Helper()
	ns, err := netnsHandle(in.name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := inNetns(ns, func() (err error) {
		if netw == "udp" {
			pc, err = net.ListenPacket("udp4", addr)
		} else {
			ln, err = net.Listen("tcp4", addr)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ln, pc
}

// dns serves A records from answer on addr, UDP.
func (in *internet) dns(t *testing.T, addr string, answer func(string) (string, bool)) {
	t.Helper()
	_, pc := in.listen(t, "udp", addr+":53")
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		a, ok := answer(dns.CanonicalName(r.Question[0].Name))
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case r.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.ParseIP(a)})
		}
		w.WriteMsg(m)
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
}

func (in *internet) web(t *testing.T, addr, body string) {
	t.Helper()
	ln, _ := in.listen(t, "tcp", addr)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, body) })}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// fetch reports whether the guest got the page of host (a name or an
// address) on port 80. The fixture's static busybox wget crashes and its
// nc cannot resolve names, so names go through busybox nslookup (which
// asks the resolver in /etc/resolv.conf) and the page through nc. Only
// A is asked: busybox sends A and AAAA at once from one socket, and
// conntrack may drop one of two such UDP packets (a known race).
func fetch(e *env, vm, host string) bool {
	script := `h=` + host + `; case $h in *[a-z]*) ip=$(nslookup -type=a $h 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{print $NF; exit}');; *) ip=$h;; esac; ` +
		`[ -n "$ip" ] && printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' $h | nc -w 4 $ip 80 2>&1; true`
	return strings.Contains(e.ssh(vm, script), "hello from")
}

type reach struct {
	what, host string
	want       bool
}

func expectReach(t *testing.T, e *env, vm, mode string, cases []reach) {
	t.Helper()
	for _, c := range cases {
		if got := fetch(e, vm, c.host); got != c.want {
			t.Errorf("%s: %s (%s): fetched = %v, want %v", mode, c.what, c.host, got, c.want)
			diagnose(t, e, vm, c.host)
		}
	}
}

// diagnose logs what the guest and the host saw of a failed check.
func diagnose(t *testing.T, e *env, vm, host string) {
	t.Helper()
	guest, _, _ := e.run("vm", "ssh", vm, "--", "ip route; cat /etc/resolv.conf; nslookup -type=a "+host+" 2>&1")
	rules, _ := e.inNS("nft", "list", "ruleset").CombinedOutput()
	routes, _ := e.inNS("ip", "route").CombinedOutput()
	t.Logf("guest:\n%s\nhost routes:\n%s\nhost rules:\n%s", guest, routes, rules)
}

// egressTable is 'nft list table inet banger_egress' without what runs
// on its own: the timeouts of learned addresses and the counters.
var egressVolatile = regexp.MustCompile(` expires [0-9a-z.]+|packets \d+ bytes \d+`)

func egressTable(t *testing.T, e *env) string {
	t.Helper()
	out, err := e.inNS("nft", "list", "table", "inet", "banger_egress").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table inet banger_egress: %v\n%s", err, out)
	}
	return egressVolatile.ReplaceAllString(string(out), "")
}

// TestEgressPolicy drives one busybox guest through the three policies
// against the fake internet, changing the policy of the running VM.
func TestEgressPolicy(t *testing.T) {
	e := newEnv(t, "default_dns = \""+inetDNS+"\"\n")
	e.startDaemon()
	e.registerBusybox("bb")
	newInternet(t, e)
	e.ok("vm", "create", "--name", "eg", "--image", "bb", "--memory", "256", "--disk-size", "256M")
	vm := e.vm("eg")
	if vm.Network == nil || vm.Network.Mode != "full" {
		t.Fatalf("default policy = %+v, want full", vm.Network)
	}

	// full: the internet, by name and by address; not the LAN nor
	// link-local.
	expectReach(t, e, "eg", "full", []reach{
		{"allowed.test", "allowed.test", true},
		{"denied.test", "denied.test", true},
		{"denied.test's address", inetDenied, true},
		{"the LAN", inetLAN, false},
		{"link-local metadata", inetMetadata, false},
	})

	// allow, on the running VM.
	e.ok("vm", "set", "eg", "--network", "allow", "--allow", "allowed.test")
	expectReach(t, e, "eg", "allow", []reach{
		{"allowed.test", "allowed.test", true},
		{"denied.test", "denied.test", false},
		{"denied.test's address", inetDenied, false},
		{"the LAN", inetLAN, false},
		{"link-local metadata", inetMetadata, false},
	})
	if out := e.ssh("eg", "nslookup -type=a denied.test 2>&1 || true"); strings.Contains(out, inetDenied) {
		t.Errorf("allow: denied.test resolved:\n%s", out)
	}
	if out := e.ssh("eg", "nslookup -type=a whatever.test "+inetOtherDNS+" 2>&1 || true"); strings.Contains(out, otherDNSAnswer) {
		t.Errorf("allow: a query sent straight to another resolver was answered by it:\n%s", out)
	}
	if out := e.ssh("eg", "echo x | nc -w 3 "+inetOtherDNS+" 853 >/dev/null 2>&1 && echo OPEN || echo CLOSED"); !strings.Contains(out, "CLOSED") {
		t.Errorf("allow: DNS over TLS to another resolver was reachable: %s", out)
	}
	if v := e.vm("eg"); v.PID != vm.PID {
		t.Errorf("the policy change restarted the VM: pid %d -> %d", vm.PID, v.PID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := e.ok("events", "--vm", "eg", "-n", "50")
		if strings.Contains(evs, "egress: vm eg dropped") && strings.Contains(evs, "denied.test") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no egress events for the denials:\n%s", evs)
			break
		}
		time.Sleep(time.Second)
	}

	// none: nothing out; the agent path and vm ssh still work.
	e.ok("vm", "set", "eg", "--network", "none")
	expectReach(t, e, "eg", "none", []reach{
		{"allowed.test", "allowed.test", false},
		{"allowed.test's address", inetAllowed, false},
	})
	if out := e.ok("vm", "exec", "eg", "--", "echo", "agent-ok"); !strings.Contains(out, "agent-ok") {
		t.Errorf("none: vm exec through the agent = %q", out)
	}
	if out := e.ssh("eg", "echo ssh-ok"); !strings.Contains(out, "ssh-ok") {
		t.Errorf("none: vm ssh = %q", out)
	}

	// kill -9 of the daemon and a restart leave the rules as they were.
	e.ok("vm", "set", "eg", "--network", "allow", "--allow", "allowed.test")
	expectReach(t, e, "eg", "allow again", []reach{{"allowed.test", "allowed.test", true}})
	before := egressTable(t, e)
	if !strings.Contains(before, "vm_"+strings.ReplaceAll(vm.IP, ".", "_")) {
		t.Fatalf("no chain for the VM:\n%s", before)
	}
	e.killDaemon()
	e.startDaemon()
	if after := egressTable(t, e); after != before {
		t.Errorf("the egress table changed across kill -9 and a restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	expectReach(t, e, "eg", "allow after restart", []reach{{"allowed.test", "allowed.test", true}})

	// Deleting the VM removes its rules.
	e.ok("vm", "delete", "--force", "eg")
	if after := egressTable(t, e); strings.Contains(after, "vm_"+strings.ReplaceAll(vm.IP, ".", "_")) {
		t.Errorf("the VM's rules outlived it:\n%s", after)
	}
}
