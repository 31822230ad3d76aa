package network

// Root tier: everything here runs inside network namespaces the test
// creates and removes (testutil.NewNetNS); nothing touches the host's own
// namespace, and traffic goes only between those namespaces.

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"banger/internal/config"
	"banger/internal/testutil"
)

const (
	testUID, testGID = 4242, 4243
	uplinkHost       = "10.99.0.1/24" // the host's "uplink" (veth into the uplink namespace)
	uplinkFar        = "10.99.0.2/24" // the "internet" end
)

// nsWorld is three namespaces: host (where setup runs), uplink (the
// internet, reached over a veth that carries host's default route), and
// guest (a stand-in VM, its NIC a veth port on the bridge).
type nsWorld struct {
	host, uplink, guest *testutil.NetNS
	sys                 *System
	spec                Spec
}

func newWorld(t *testing.T) *nsWorld {
	t.Helper()
	testutil.RequiresRoot(t)
	w := &nsWorld{host: testutil.NewNetNS(t), uplink: testutil.NewNetNS(t), guest: testutil.NewNetNS(t)}
	cfg := config.Default()
	cfg.TapPoolSize = 4
	w.spec = SpecFromConfig(cfg, testUID, testGID)
	w.sys = NewSystem(WithResolved(&fakeResolved{links: map[string]string{}}), WithUnits(&fakeUnits{units: map[string]string{}}),
		WithStateDir(t.TempDir()), WithExecutable("/usr/local/bin/banger"))
	w.must(t, w.host, func() error {
		if err := vethInto("uplink0", uplinkHost, "wan0", w.uplink); err != nil {
			return err
		}
		gw := net.ParseIP(strings.Split(uplinkFar, "/")[0])
		return netlink.RouteAdd(&netlink.Route{Gw: gw})
	})
	w.must(t, w.uplink, func() error { return setAddrUp("wan0", uplinkFar) })
	return w
}

func (w *nsWorld) must(t *testing.T, ns *testutil.NetNS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// vethInto makes a veth pair in the current namespace, keeps name here
// with addr (if any) and moves peer into ns.
func vethInto(name, addr, peer string, ns *testutil.NetNS) error {
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		return fmt.Errorf("creating veth %s: %w", name, err)
	}
	p, err := netlink.LinkByName(peer)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetNsFd(p, int(ns.Handle)); err != nil {
		return fmt.Errorf("moving %s: %w", peer, err)
	}
	return setAddrUp(name, addr)
}

func setAddrUp(name, addr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("adding %s to %s: %w", addr, name, err)
		}
	}
	return netlink.LinkSetUp(l)
}

// snapshot describes the namespace: links, addresses, tap owners, the
// nftables rules (with handles, so a rewrite shows) and ip_forward.
func snapshot() (string, error) {
	var b strings.Builder
	links, err := netlink.LinkList()
	if err != nil {
		return "", err
	}
	for _, l := range links {
		a := l.Attrs()
		// Administrative state only: carrier (the running flag) of the
		// uplink veth comes up on its own time.
		fmt.Fprintf(&b, "link %d %s %s master=%d alias=%q up=%v mtu=%d mac=%s", a.Index, a.Name, l.Type(), a.MasterIndex, a.Alias,
			a.Flags&net.FlagUp != 0, a.MTU, a.HardwareAddr)
		if t, ok := l.(*netlink.Tuntap); ok {
			fmt.Fprintf(&b, " owner=%d group=%d persist=%v", t.Owner, t.Group, !t.NonPersist)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, ad := range addrs {
			fmt.Fprintf(&b, " %s", ad.IPNet)
		}
		b.WriteByte('\n')
	}
	c, err := nftables.New()
	if err != nil {
		return "", err
	}
	tables, err := c.ListTables()
	if err != nil {
		return "", err
	}
	chains, err := c.ListChains()
	if err != nil {
		return "", err
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "table %d %s\n", t.Family, t.Name)
		for _, ch := range chains {
			if ch.Table.Name != t.Name {
				continue
			}
			rules, err := c.GetRules(t, ch)
			if err != nil {
				return "", err
			}
			for _, r := range rules {
				fmt.Fprintf(&b, "  rule %s/%d %d exprs\n", ch.Name, r.Handle, len(r.Exprs))
			}
		}
	}
	fwd, err := HostSysctl().Get(forwardKey)
	fmt.Fprintf(&b, "ip_forward=%s\n", fwd)
	return b.String(), err
}

func TestRootSetupTeardownInNetns(t *testing.T) {
	w := newWorld(t)
	hostForward, err := HostSysctl().Get(forwardKey) // the real host's, read outside any test namespace
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w.must(t, w.host, func() error {
		before, err := snapshot()
		if err != nil {
			return err
		}
		r, err := w.sys.Setup(ctx, w.spec, SetupOptions{})
		if err != nil {
			return err
		}
		t.Logf("setup: %+v", r.Changes)
		if err := checkBuilt(t, w.spec); err != nil {
			return err
		}
		if st := w.sys.Status(ctx, w.spec); !st.Ready() || st.Piece("nat").State != StateOK {
			t.Errorf("status after setup: %+v", st.Pieces)
		}

		afterSetup, err := snapshot()
		if err != nil {
			return err
		}
		r, err = w.sys.Setup(ctx, w.spec, SetupOptions{})
		if err != nil {
			return err
		}
		if r.Changed() {
			t.Errorf("second setup reported changes: %+v", r.Changes)
		}
		again, err := snapshot()
		if err != nil {
			return err
		}
		if diff := cmp.Diff(afterSetup, again); diff != "" {
			t.Errorf("second setup changed the namespace (-first +second):\n%s", diff)
		}

		if _, err := w.sys.Teardown(ctx, Spec{}, TeardownOptions{}); err != nil {
			return err
		}
		after, err := snapshot()
		if err != nil {
			return err
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("teardown did not restore the namespace (-before +after):\n%s", diff)
		}
		return nil
	})
	if got, _ := HostSysctl().Get(forwardKey); got != hostForward {
		t.Errorf("the host's own ip_forward changed from %s to %s", hostForward, got)
	}
}

// checkBuilt reads back what Setup made, with netlink and nftables.
func checkBuilt(t *testing.T, spec Spec) error {
	t.Helper()
	br, err := netlink.LinkByName(spec.Bridge)
	if err != nil {
		return err
	}
	if _, ok := br.(*netlink.Bridge); !ok || br.Attrs().Flags&net.FlagUp == 0 || br.Attrs().HardwareAddr.String() != "02:ba:ac:10:00:01" {
		t.Errorf("bridge = %T %+v", br, br.Attrs())
	}
	addrs, _ := netlink.AddrList(br, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "172.16.0.1/24" {
		t.Errorf("bridge addresses = %v, want 172.16.0.1/24", addrs)
	}
	for _, name := range TapNames(spec.Bridge, spec.Taps) {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		tap, ok := l.(*netlink.Tuntap)
		if !ok || tap.Mode != netlink.TUNTAP_MODE_TAP || tap.NonPersist || tap.Owner != testUID || tap.Group != testGID {
			t.Errorf("%s = %T %+v, want a persistent tap owned by %d:%d", name, l, l, testUID, testGID)
			continue
		}
		if l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: master %d (bridge is %d), flags %v", name, l.Attrs().MasterIndex, br.Attrs().Index, l.Attrs().Flags)
		}
	}
	if fwd, _ := HostSysctl().Get(forwardKey); fwd != "1" {
		t.Errorf("ip_forward in the namespace = %s, want 1", fwd)
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tbl := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	post, err := c.ListChain(tbl, "postrouting")
	if err != nil {
		return fmt.Errorf("reading chain postrouting: %w", err)
	}
	rules, err := c.GetRules(tbl, post)
	if err != nil {
		return err
	}
	if len(rules) != 1 || !slices.ContainsFunc(rules[0].Exprs, func(e expr.Any) bool { _, ok := e.(*expr.Masq); return ok }) {
		t.Errorf("postrouting rules = %v, want one masquerade", rules)
	}
	fwdChain, err := c.ListChain(tbl, "forward")
	if err != nil {
		return fmt.Errorf("reading chain forward: %w", err)
	}
	if *fwdChain.Hooknum != *nftables.ChainHookForward || fwdChain.Policy == nil || *fwdChain.Policy != nftables.ChainPolicyAccept {
		t.Errorf("forward chain = %+v, want a forward hook with policy accept (banger never drops other traffic)", fwdChain)
	}
	return nil
}

func TestRootNATAndForwarding(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.must(t, w.host, func() error {
		if _, err := w.sys.Setup(ctx, w.spec, SetupOptions{}); err != nil {
			return err
		}
		// The guest's NIC: a veth whose host end is a bridge port, as a TAP
		// is once a VMM opens it.
		if err := vethInto("gport", "", "eth0", w.guest); err != nil {
			return err
		}
		l, _ := netlink.LinkByName("gport")
		br, _ := netlink.LinkByName(w.spec.Bridge)
		return netlink.LinkSetMaster(l, br)
	})
	w.must(t, w.guest, func() error {
		if err := setAddrUp("eth0", "172.16.0.2/24"); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("172.16.0.1")})
	})

	// A server on the "internet" reports who connected.
	var ln net.Listener
	w.must(t, w.uplink, func() (err error) {
		ln, err = net.Listen("tcp4", "10.99.0.2:0")
		return err
	})
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- err.Error()
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	w.must(t, w.guest, func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 3*time.Second)
		if err != nil {
			return fmt.Errorf("guest reaching the uplink: %w", err)
		}
		return c.Close()
	})
	if from := <-seen; from != "10.99.0.1" {
		t.Errorf("the uplink saw the guest as %s, want the host's uplink address 10.99.0.1 (masquerade)", from)
	}

	// Nothing from outside gets in to a guest, even with a route to it.
	var gln net.Listener
	w.must(t, w.guest, func() (err error) {
		gln, err = net.Listen("tcp4", "172.16.0.2:0")
		return err
	})
	defer gln.Close()
	w.must(t, w.uplink, func() error {
		dst, _ := netlink.ParseIPNet("172.16.0.0/24")
		if err := netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("10.99.0.1")}); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp4", gln.Addr().String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
			return fmt.Errorf("the uplink reached a guest at %s; the forward chain should drop it", gln.Addr())
		}
		return nil
	})
	// Control: without banger's table the same connection gets through,
	// so it was the forward chain that stopped it. Then put it back.
	w.must(t, w.host, func() error { _, err := HostFirewall().Remove(); return err })
	w.must(t, w.uplink, func() error {
		c, err := net.DialTimeout("tcp4", gln.Addr().String(), 3*time.Second)
		if err != nil {
			return fmt.Errorf("control: the uplink cannot reach the guest even without banger's rules: %w", err)
		}
		return c.Close()
	})
	w.must(t, w.host, func() error { _, err := w.sys.Setup(ctx, w.spec, SetupOptions{}); return err })
	// The host itself still reaches guests (output, not forwarding).
	w.must(t, w.host, func() error {
		c, err := net.DialTimeout("tcp4", gln.Addr().String(), 3*time.Second)
		if err != nil {
			return fmt.Errorf("host reaching the guest: %w", err)
		}
		return c.Close()
	})
}

func TestRootDNSOnBridge(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ipam := NewIPAM(newMemStore(), config.Default())
	allocate(t, ipam, "web")
	var srv *DNSServer
	w.must(t, w.host, func() (err error) {
		// The daemon may start before setup: IP_FREEBIND lets it bind the
		// bridge address that does not exist yet.
		if srv, err = ListenDNS(DNSOptions{Addr: DNSAddr(config.Default()), Resolver: ipam, CIDR: config.Default().CIDR}); err != nil {
			return err
		}
		_, err = w.sys.Setup(ctx, w.spec, SetupOptions{})
		return err
	})
	defer srv.Close()
	ask := func(ns *testutil.NetNS, server string) {
		t.Helper()
		w.must(t, ns, func() error {
			for _, netw := range []string{"udp", "tcp"} {
				m := new(dns.Msg).SetQuestion("web.vm.", dns.TypeA)
				r, _, err := (&dns.Client{Net: netw, Timeout: 3 * time.Second}).Exchange(m, server)
				if err != nil {
					return fmt.Errorf("asking %s over %s: %w", server, netw, err)
				}
				if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "172.16.0.2" {
					t.Errorf("web.vm from %s over %s: %v", server, netw, r)
				}
			}
			return nil
		})
	}
	ask(w.host, "172.16.0.1:1053") // the daemon's own port
	ask(w.host, "172.16.0.1:53")   // through banger's output DNAT, as systemd-resolved asks
	// A guest asks on port 53 too (prerouting DNAT).
	w.must(t, w.host, func() error {
		if err := vethInto("gport", "", "eth0", w.guest); err != nil {
			return err
		}
		l, _ := netlink.LinkByName("gport")
		br, _ := netlink.LinkByName(w.spec.Bridge)
		return netlink.LinkSetMaster(l, br)
	})
	w.must(t, w.guest, func() error { return setAddrUp("eth0", "172.16.0.2/24") })
	ask(w.guest, "172.16.0.1:53")
}

// TestRootTapOwnerCanOpen opens a pool TAP as its unprivileged owner (and
// fails as another user), the way the daemon's VMM will.
func TestRootTapOwnerCanOpen(t *testing.T) {
	w := newWorld(t)
	w.must(t, w.host, func() error {
		if _, err := w.sys.Setup(context.Background(), w.spec, SetupOptions{}); err != nil {
			return err
		}
		tap := TapName(w.spec.Bridge, 0)
		if err := openTapAs(t, tap, testUID, testGID); err != nil {
			t.Errorf("owner %d:%d opening %s: %v", testUID, testGID, tap, err)
		}
		if err := openTapAs(t, tap, testUID+1, testGID+1); err == nil {
			t.Errorf("uid %d opened %s, which it does not own", testUID+1, tap)
		}
		// Pool: as the owner, the tap is handed out; then a process holds
		// it open (carrier) and status counts it in use.
		pool := NewPool(PoolOptions{Config: cfgOf(w.spec), Store: newMemStore(), UID: testUID})
		got, err := pool.Acquire(context.Background(), "vm1")
		if err != nil || got != tap {
			t.Errorf("Acquire = %q, %v; want %s", got, err, tap)
		}
		if _, err := NewPool(PoolOptions{Config: cfgOf(w.spec), Store: newMemStore(), UID: testUID + 1}).Acquire(context.Background(), "vm1"); err == nil {
			t.Error("a pool for another user handed out a tap it cannot open")
		}
		return nil
	})
}

func cfgOf(s Spec) config.Config {
	c := config.Default()
	c.BridgeName, c.BridgeIP, c.CIDR, c.TapPoolSize = s.Bridge, s.BridgeIP, s.CIDR, s.Taps
	return c
}

// openTapAs runs this test binary as uid:gid (from the calling thread, so
// in its namespace) to attach to the tap with TUNSETIFF, as a VMM does.
func openTapAs(t *testing.T, tap string, uid, gid int) error {
	cmd := exec.Command(worldExecutable(t), "-test.run=^TestRootTapOpenHelper$")
	cmd.Env = append(os.Environ(), "BANGER_OPEN_TAP="+tap)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	// /dev/net/tun may be root-only on a host (it is 0666 on Debian); the
	// owner check under test happens at TUNSETIFF, so hand the child an
	// open descriptor.
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer tun.Close()
	cmd.ExtraFiles = []*os.File{tun} // fd 3
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// worldExecutable copies the test binary where any user may run it (the
// go build cache is root's alone).
func worldExecutable(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "banger-network-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "network.test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRootTapOpenHelper is not a test: openTapAs runs it in a child.
func TestRootTapOpenHelper(t *testing.T) {
	name := os.Getenv("BANGER_OPEN_TAP")
	if name == "" {
		t.Skip("helper process for TestRootTapOwnerCanOpen")
	}
	fd := 3 // /dev/net/tun, opened by openTapAs
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		fmt.Fprintln(os.Stderr, "TUNSETIFF:", errno)
		os.Exit(1)
	}
	io.WriteString(os.Stdout, "opened "+name+" as uid "+strconv.Itoa(os.Getuid()))
	os.Exit(0)
}
