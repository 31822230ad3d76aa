//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/internal/vmm"

	"github.com/miekg/dns"
)

// TestTwoVMs covers what needs two guests: they reach each other and the
// host, the host reaches them by name through the daemon's DNS, guest
// traffic leaving the bridge is masqueraded, a killed daemon re-adopts
// both with their addresses and can still shut one down cleanly, and a
// killed VMM is noticed.
func TestTwoVMs(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	// --allow-lan: VMs reach each other, the host and the private
	// "outside" of checkNAT only when their policy says so (egress_test.go
	// covers the default).
	e.ok("vm", "create", "--name", "a", "--image", "bb", "--memory", "256", "--disk-size", "256M", "--allow-lan")
	e.ok("vm", "create", "--name", "b", "--image", "bb", "--memory", "256", "--disk-size", "256M", "--allow-lan")
	a, b := e.vm("a"), e.vm("b")

	e.ssh("a", "ping -c 2 -W 5 "+b.IP)
	e.ssh("b", "ping -c 2 -W 5 "+a.IP)
	for _, name := range []string{"a", "b"} {
		e.ssh(name, "ping -c 2 -W 5 172.16.0.1")
	}

	// The host finds a service in b by name: resolve b.vm through the
	// daemon's DNS on the bridge, then connect.
	e.ssh("b", "echo hello-from-b > /tmp/index.html; httpd -p 8080 -h /tmp")
	ip := resolveInNS(t, e, "b.vm")
	if ip != b.IP {
		t.Fatalf("b.vm resolved to %q through the daemon's DNS, want %s", ip, b.IP)
	}
	code, body := getInNS(t, e, ip+":8080", "b.vm:8080", "/index.html")
	if code != 200 || !strings.Contains(body, "hello-from-b") {
		t.Errorf("GET http://b.vm:8080/index.html = %q", body)
	}

	checkNAT(t, e, "a")

	// kill -9 the daemon: both VMs keep running and are re-adopted.
	e.killDaemon()
	if !vmm.Alive(a.PID, procStart(a.PID)) || !vmm.Alive(b.PID, procStart(b.PID)) {
		t.Fatal("a VM died with the daemon")
	}
	// Moving the network under running VMs is refused, and changes
	// nothing: the daemon does not start, the VMs keep their addresses.
	cfg := filepath.Join(e.home, "config", "banger", "config.toml")
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, append(append([]byte(nil), orig...), "cidr = \"10.77.0.0/24\"\nbridge_ip = \"10.77.0.1\"\n"...), 0o644)
	refused := e.inNS(filepath.Join(binDir, "bangerd"), "--setup-network")
	refused.WaitDelay = time.Second
	guard := time.AfterFunc(time.Minute, func() { refused.Process.Kill() }) // it should exit at once
	out, err := refused.CombinedOutput()
	guard.Stop()
	if err == nil || !strings.Contains(string(out), "cidr") || !strings.Contains(string(out), "vm stop") {
		t.Fatalf("bangerd with a new cidr under running VMs: err = %v, want a refusal naming cidr and the fix:\n%s", err, out)
	}
	os.WriteFile(cfg, orig, 0o644)
	e.startDaemon()
	for _, before := range []api.VM{a, b} {
		v := e.vm(before.Name)
		if v.State != "running" {
			t.Errorf("after restart %s is %s, want running", v.Name, v.State)
		}
		if v.IP != before.IP || v.PID != before.PID {
			t.Errorf("after restart %s has ip %s, pid %d; want the same %s, %d", v.Name, v.IP, v.PID, before.IP, before.PID)
		}
		if got := strings.TrimSpace(e.ssh(v.Name, "hostname")); got != v.Name {
			t.Errorf("hostname of %s = %q", v.Name, got)
		}
	}

	// The re-adopted daemon stops a cleanly: the guest shuts down and
	// flushes /root, so a marker written without sync survives.
	e.ssh("a", "echo kept > /root/marker")
	e.ok("vm", "stop", "a")
	e.ok("vm", "start", "a")
	if got := strings.TrimSpace(e.ssh("a", "cat /root/marker || true")); got != "kept" {
		t.Errorf("/root/marker of a after stop and start under the re-adopting daemon = %q, want kept", got)
	}
	if v := e.vm("a"); v.IP != a.IP {
		t.Errorf("a came back with ip %s, want its lease %s", v.IP, a.IP)
	}

	// kill -9 one VMM: the daemon notices and marks it stopped.
	syscall.Kill(b.PID, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for e.vm("b").State != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("b still %s 30s after its VMM was killed", e.vm("b").State)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// resolveInNS asks the daemon's DNS (bridge_ip:53, forwarded to the
// daemon) for name's A record. The socket is made on the namespace's
// thread, so the query never leaves the test's namespace.
func resolveInNS(t *testing.T, e *env, name string) string {
	t.Helper()
	var ip string
	err := e.ns.Do(func() error {
		c, err := net.DialTimeout("udp", "172.16.0.1:53", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeA)
		dc := &dns.Conn{Conn: c}
		if err := dc.WriteMsg(q); err != nil {
			return err
		}
		r, err := dc.ReadMsg()
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 || !r.Authoritative {
			return fmt.Errorf("answer: %s", r)
		}
		ip = r.Answer[0].(*dns.A).A.String()
		return nil
	})
	if err != nil {
		t.Fatalf("resolving %s through the daemon's DNS: %v", name, err)
	}
	return ip
}

// checkNAT gives the test namespace an "uplink" (a veth to a second
// namespace standing for the outside world, with a server in it) and
// checks that the guest reaches that server with its address masqueraded
// to the uplink's. No traffic leaves the test's namespaces.
func checkNAT(t *testing.T, e *env, vm string) {
	t.Helper()
	out, err := e.inNS("nft", "list", "table", "ip", "banger").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "masquerade") {
		t.Fatalf("banger's nftables table has no masquerade rule: %v\n%s", err, out)
	}
	outside := newOutside(t, e)
	got := make(chan string, 1)
	ln := outside.listen(t, "10.250.0.2:9999")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		got <- c.RemoteAddr().String()
		c.Close()
	}()
	e.ssh(vm, "echo hi | nc -w 5 10.250.0.2 9999 || true")
	select {
	case src := <-got:
		if !strings.HasPrefix(src, "10.250.0.1:") {
			t.Errorf("the outside saw the guest as %s; want the masqueraded uplink address 10.250.0.1", src)
		}
	case <-time.After(30 * time.Second):
		t.Error("the guest's connection never reached the outside namespace")
	}
}

type outsideNS struct{ name string }

func newOutside(t *testing.T, e *env) *outsideNS {
	t.Helper()
	name := e.ns.Name + "-out"
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	veth := "bgup" + fmt.Sprint(time.Now().UnixNano()%100000)
	run("-n", e.ns.Name, "link", "add", veth, "type", "veth", "peer", "name", "uplink", "netns", name)
	run("-n", e.ns.Name, "addr", "add", "10.250.0.1/24", "dev", veth)
	run("-n", e.ns.Name, "link", "set", veth, "up")
	run("-n", e.ns.Name, "route", "add", "default", "via", "10.250.0.2")
	run("-n", name, "addr", "add", "10.250.0.2/24", "dev", "uplink")
	run("-n", name, "link", "set", "uplink", "up")
	run("-n", name, "link", "set", "lo", "up")
	return &outsideNS{name: name}
}

// listen opens a TCP listener inside the outside namespace.
func (o *outsideNS) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ns, err := netnsHandle(o.name)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := inNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
