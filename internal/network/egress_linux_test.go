package network

// Root tier: egress rules built for real in the namespaces of nsWorld,
// checked by the traffic they let through or stop.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"banger/internal/config"
	"banger/internal/testutil"
)

// Addresses on the "internet" side (the uplink namespace): two public
// servers, the LAN (the uplink's own private address) and a metadata
// service on link-local.
const (
	publicA   = "198.51.100.10"
	publicB   = "203.0.113.10"
	lanServer = "10.99.0.2"
	metadata  = "169.254.169.254"
	guestAddr = "172.16.0.2"
	peerAddr  = "172.16.0.3"
)

type egressWorld struct {
	*nsWorld
	peer  *testutil.NetNS // a second VM on the bridge
	port  string          // every server listens on it
	spec  EgressSpec
	wg    sync.WaitGroup
	close []func()
}

func newEgressWorld(t *testing.T) *egressWorld {
	w := &egressWorld{nsWorld: newWorld(t), peer: testutil.NewNetNS(t)}
	ctx := context.Background()
	w.spec = EgressSpec{Bridge: w.nsWorld.spec.Bridge, BridgeIP: w.nsWorld.spec.BridgeIP, CIDR: w.nsWorld.spec.CIDR, DNSPort: DNSPort}
	w.must(t, w.host, func() error {
		if _, err := w.sys.Setup(ctx, w.nsWorld.spec, SetupOptions{}); err != nil {
			return err
		}
		br, _ := netlink.LinkByName(w.nsWorld.spec.Bridge)
		for _, p := range []struct {
			port string
			ns   *testutil.NetNS
		}{{TapName(w.spec.Bridge, 8), w.guest}, {TapName(w.spec.Bridge, 9), w.peer}} {
			// Named as pool TAPs beyond the pool, as the bridge-family
			// rules match banger's TAPs by name.
			if err := vethInto(p.port, "", "eth0", p.ns); err != nil {
				return err
			}
			l, _ := netlink.LinkByName(p.port)
			if err := netlink.LinkSetMaster(l, br); err != nil {
				return err
			}
		}
		return nil
	})
	for _, g := range []struct {
		ns   *testutil.NetNS
		addr string
	}{{w.guest, guestAddr}, {w.peer, peerAddr}} {
		w.must(t, g.ns, func() error {
			if err := setAddrUp("eth0", g.addr+"/24"); err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("172.16.0.1")})
		})
	}
	w.must(t, w.uplink, func() error {
		lo, _ := netlink.LinkByName("lo")
		for _, a := range []string{publicA, publicB, metadata} {
			if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(a), Mask: net.CIDRMask(32, 32)}}); err != nil {
				return err
			}
		}
		return nil
	})
	// One port everywhere: the uplink's servers, the host (on every
	// address, as a host service would), the peer VM, and the host's DNS.
	w.port = "18080"
	w.listen(t, w.uplink, "0.0.0.0:"+w.port)
	w.listen(t, w.host, "0.0.0.0:"+w.port)
	w.listen(t, w.peer, "0.0.0.0:"+w.port)
	w.listen(t, w.host, fmt.Sprintf("172.16.0.1:%d", DNSPort))
	w.listen(t, w.guest, "0.0.0.0:22")
	t.Cleanup(func() {
		for _, c := range w.close {
			c()
		}
		w.wg.Wait()
	})
	return w
}

// listen serves TCP in ns, accepting and closing every connection, until
// the test ends.
func (w *egressWorld) listen(t *testing.T, ns *testutil.NetNS, addr string) {
	t.Helper()
	var ln net.Listener
	w.must(t, ns, func() (err error) {
		ln, err = (&net.ListenConfig{Control: freeBind}).Listen(context.Background(), "tcp4", addr)
		return err
	})
	w.close = append(w.close, func() { ln.Close() })
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reach reports whether a TCP connection from ns to host:port opens.
func (w *egressWorld) reach(t *testing.T, ns *testutil.NetNS, host, port string) bool {
	t.Helper()
	var err error
	if e := ns.Do(func() error {
		var c net.Conn
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(host, port), 700*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	}); e != nil {
		t.Fatal(e)
	}
	return err == nil
}

func (w *egressWorld) sync(t *testing.T, vms ...VMEgress) {
	t.Helper()
	w.must(t, w.host, func() error { return HostEgress().Sync(w.spec, vms) })
}

type reachCase struct {
	what, host string
	want       bool
}

func (w *egressWorld) expect(t *testing.T, ns *testutil.NetNS, cases []reachCase) {
	t.Helper()
	for _, c := range cases {
		port := w.port
		if c.host == "dns" {
			c.host, port = "172.16.0.1", fmt.Sprint(DNSPort)
		}
		if got := w.reach(t, ns, c.host, port); got != c.want {
			t.Errorf("%s (%s): reached = %v, want %v", c.what, c.host, got, c.want)
		}
	}
}

func vmPolicy(addr string, mode EgressMode, lan bool, allow ...string) VMEgress {
	p, err := ParseEgressPolicy(string(mode), allow, lan)
	if err != nil {
		panic(err)
	}
	v := VMEgress{Addr: netip.MustParseAddr(addr), Policy: p}
	// The ports newEgressWorld plugs the two stand-in VMs into.
	switch addr {
	case guestAddr:
		v.Tap = TapName(config.Default().BridgeName, 8)
	case peerAddr:
		v.Tap = TapName(config.Default().BridgeName, 9)
	}
	return v
}

func TestRootEgressPolicies(t *testing.T) {
	w := newEgressWorld(t)
	full := vmPolicy(guestAddr, EgressFull, false)
	peer := vmPolicy(peerAddr, EgressFull, false)

	// Control: without the egress table everything is reachable, so each
	// failure below is the policy's doing.
	w.expect(t, w.guest, []reachCase{
		{"public server", publicA, true}, {"LAN", lanServer, true}, {"metadata", metadata, true},
		{"host's uplink address", "10.99.0.1", true}, {"host on the bridge", "172.16.0.1", true}, {"other VM", peerAddr, true},
	})

	w.sync(t, full, peer)
	w.expect(t, w.guest, []reachCase{
		{"public server", publicA, true}, {"another public server", publicB, true},
		{"LAN", lanServer, false}, {"metadata", metadata, false},
		{"host's uplink address", "10.99.0.1", false}, {"host on the bridge", "172.16.0.1", false},
		{"other VM", peerAddr, false}, {"the bridge's DNS", "dns", true},
	})
	if !w.reach(t, w.host, guestAddr, "22") {
		t.Error("the host cannot reach the guest's ssh port under full")
	}
	w.checkDenied(t, guestAddr)

	// allow: a CIDR on the list, and a name's address once learned.
	allow := vmPolicy(guestAddr, EgressAllow, false, publicB+"/32", "allowed.test")
	w.sync(t, allow, peer)
	w.expect(t, w.guest, []reachCase{
		{"listed CIDR", publicB, true}, {"unlisted public server", publicA, false},
		{"LAN", lanServer, false}, {"metadata", metadata, false}, {"the bridge's DNS", "dns", true},
	})
	w.must(t, w.host, func() error {
		return HostEgress().Learn(netip.MustParseAddr(guestAddr), []netip.Addr{netip.MustParseAddr(publicA)}, time.Second)
	})
	w.expect(t, w.guest, []reachCase{{"learned address", publicA, true}})
	// A guest that takes an address no VM leased gets nowhere.
	w.must(t, w.guest, func() error {
		l, _ := netlink.LinkByName("eth0")
		a, _ := netlink.ParseAddr("172.16.0.200/24")
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		return netlink.RouteReplace(&netlink.Route{Gw: net.ParseIP("172.16.0.1"), Src: net.ParseIP("172.16.0.200")})
	})
	w.expect(t, w.guest, []reachCase{{"public server from an unleased address", publicA, false}, {"listed CIDR from an unleased address", publicB, false}})
	w.must(t, w.guest, func() error {
		l, _ := netlink.LinkByName("eth0")
		a, _ := netlink.ParseAddr("172.16.0.200/24")
		if err := netlink.AddrDel(l, a); err != nil {
			return err
		}
		return netlink.RouteReplace(&netlink.Route{Gw: net.ParseIP("172.16.0.1")})
	})
	w.expect(t, w.guest, []reachCase{{"learned address, own address again", publicA, true}})
	// Learning for a VM not in allow mode changes nothing.
	w.must(t, w.host, func() error {
		return HostEgress().Learn(netip.MustParseAddr(peerAddr), []netip.Addr{netip.MustParseAddr(lanServer)}, time.Minute)
	})
	w.checkDenied(t, guestAddr)

	// A sync that changes nothing keeps the learned address (a daemon
	// restart) and leaves the table byte for byte as it was.
	before := w.listTable(t)
	w.sync(t, allow, peer)
	if after := w.listTable(t); after != before {
		t.Errorf("a second sync changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	w.expect(t, w.guest, []reachCase{{"learned address after a resync", publicA, true}})

	// none: nothing out, but the host still reaches the guest.
	w.sync(t, vmPolicy(guestAddr, EgressNone, false), peer)
	w.expect(t, w.guest, []reachCase{
		{"public server", publicA, false}, {"listed before", publicB, false}, {"the bridge's DNS", "dns", true},
	})
	if !w.reach(t, w.host, guestAddr, "22") {
		t.Error("the host cannot reach the guest's ssh port under none")
	}

	// allow_lan lifts the always-deny list, and lets the peer reach it.
	w.sync(t, vmPolicy(guestAddr, EgressFull, true), vmPolicy(peerAddr, EgressFull, true))
	w.expect(t, w.guest, []reachCase{
		{"LAN", lanServer, true}, {"metadata", metadata, true}, {"host", "10.99.0.1", true}, {"other VM", peerAddr, true},
	})

	// Remove leaves nothing behind.
	w.must(t, w.host, func() error {
		if ok, err := HostEgress().Remove(); err != nil || !ok {
			return fmt.Errorf("remove = %v, %v", ok, err)
		}
		if ok, err := HostEgress().Remove(); err != nil || ok {
			return fmt.Errorf("second remove = %v, %v", ok, err)
		}
		return nil
	})
	if s := w.listTable(t); s != "" {
		t.Errorf("tables left after Remove:\n%s", s)
	}
}

func (w *egressWorld) checkDenied(t *testing.T, addr string) {
	t.Helper()
	w.must(t, w.host, func() error {
		d, err := HostEgress().Denied()
		if err != nil {
			return err
		}
		if len(d) == 0 || d[0].Addr.String() != addr || d[0].Packets == 0 {
			return fmt.Errorf("denied = %+v, want packets counted for %s", d, addr)
		}
		// Read once: the counters start again from zero.
		if d, err = HostEgress().Denied(); err != nil || len(d) != 0 {
			return fmt.Errorf("denied after a read = %+v, %v; want nothing", d, err)
		}
		return nil
	})
}

// expiresRE matches the time a learned address has left, which runs down
// between two listings.
var expiresRE = regexp.MustCompile(` expires [0-9a-z.]+`)

// listTable is 'nft list' of both egress tables, "" when neither exists,
// without the expiry countdowns.
func (w *egressWorld) listTable(t *testing.T) string {
	t.Helper()
	var out string
	w.must(t, w.host, func() error {
		for _, fam := range []string{"inet", "bridge"} {
			b, err := exec.Command("nft", "list", "table", fam, EgressTable).CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				continue // no such table
			}
			if err != nil {
				return err
			}
			out += expiresRE.ReplaceAllString(string(b), "")
		}
		return nil
	})
	return out
}

func TestRootTeardownRemovesEgressTables(t *testing.T) {
	w := newEgressWorld(t)
	w.sync(t, vmPolicy(guestAddr, EgressNone, false))
	if w.listTable(t) == "" {
		t.Fatal("no egress table after sync")
	}
	w.must(t, w.host, func() error {
		_, err := w.sys.Teardown(context.Background(), Spec{}, TeardownOptions{Force: true})
		return err
	})
	if s := w.listTable(t); s != "" {
		t.Errorf("teardown left the egress tables:\n%s", s)
	}
}

// udpArrives reports whether a datagram sent from ns with source src
// reaches dst (in the uplink): nothing needs to come back, so it shows
// what leaves the bridge, whatever the replies do.
func (w *egressWorld) udpArrives(t *testing.T, ns *testutil.NetNS, src, dst string) bool {
	t.Helper()
	var pc net.PacketConn
	w.must(t, w.uplink, func() (err error) {
		pc, err = (&net.ListenConfig{Control: freeBind}).ListenPacket(context.Background(), "udp4", dst+":0")
		return err
	})
	defer pc.Close()
	w.must(t, ns, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		defer c.Close()
		for range 3 {
			c.Write([]byte("spoof?"))
		}
		return nil
	})
	pc.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	_, _, err := pc.ReadFrom(make([]byte, 16))
	return err == nil
}

// TestRootEgressAntiSpoofing: a guest that takes another VM's address
// does not get that VM's policy; its packets from the borrowed address
// are dropped on the bridge.
func TestRootEgressAntiSpoofing(t *testing.T) {
	w := newEgressWorld(t)
	w.must(t, w.guest, func() error {
		l, _ := netlink.LinkByName("eth0")
		a, _ := netlink.ParseAddr(peerAddr + "/32")
		return netlink.AddrAdd(l, a)
	})
	// Control: with no tables, the borrowed address gets out, and the
	// host believes the guest's ARP for it.
	if !w.udpArrives(t, w.guest, peerAddr, publicA) {
		t.Fatal("control: a datagram from the borrowed address did not arrive without any rules")
	}
	if mac := w.hostNeighbour(t, peerAddr); mac != w.guestMAC(t) {
		t.Fatalf("control: the host's neighbour entry for %s is %q, want the guest's %s", peerAddr, mac, w.guestMAC(t))
	}
	// The guest may reach nothing, its peer everything.
	w.sync(t, vmPolicy(guestAddr, EgressNone, false), vmPolicy(peerAddr, EgressFull, false))
	if !w.udpArrives(t, w.peer, peerAddr, publicA) {
		t.Error("the peer's own datagram did not arrive under full")
	}
	if w.udpArrives(t, w.guest, peerAddr, publicA) {
		t.Error("a datagram from the guest with the peer's address got out under the peer's policy")
	}
	if w.udpArrives(t, w.guest, guestAddr, publicA) {
		t.Error("the guest's own datagram got out under none")
	}
	if mac := w.hostNeighbour(t, peerAddr); mac == w.guestMAC(t) {
		t.Errorf("the host took the guest's ARP claim to %s (%s)", peerAddr, mac)
	}
	// A TAP no VM holds sends nothing.
	free := vmPolicy(peerAddr, EgressFull, false)
	free.Tap = ""
	w.sync(t, vmPolicy(guestAddr, EgressNone, false), free)
	if w.udpArrives(t, w.peer, peerAddr, publicA) {
		t.Error("a datagram from a tap no VM holds got out")
	}
	// The binding moves with the TAP: a resync that rebinds changes the
	// table, one that does not leaves it alone.
	w.sync(t, vmPolicy(guestAddr, EgressNone, false), vmPolicy(peerAddr, EgressFull, false))
	before := w.listTable(t)
	w.sync(t, vmPolicy(guestAddr, EgressNone, false), vmPolicy(peerAddr, EgressFull, false))
	if after := w.listTable(t); after != before {
		t.Errorf("a second sync changed the tables:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !w.udpArrives(t, w.peer, peerAddr, publicA) {
		t.Error("the peer's own datagram did not arrive once its tap was bound again")
	}
}

// hostNeighbour flushes the host's neighbour entry for addr, makes the
// host ask for it (a datagram to it) and returns the MAC it learned, ""
// when none answered. The peer answers no ARP meanwhile, so only the
// guest's claim to the peer's address could answer.
func (w *egressWorld) hostNeighbour(t *testing.T, addr string) string {
	t.Helper()
	arp := func(on bool) func() error {
		return func() error {
			l, _ := netlink.LinkByName("eth0")
			if on {
				return netlink.LinkSetARPOn(l)
			}
			return netlink.LinkSetARPOff(l)
		}
	}
	w.must(t, w.peer, arp(false))
	defer w.must(t, w.peer, arp(true))
	var mac string
	w.must(t, w.host, func() error {
		br, err := netlink.LinkByName(w.spec.Bridge)
		if err != nil {
			return err
		}
		ip := net.ParseIP(addr)
		netlink.NeighDel(&netlink.Neigh{LinkIndex: br.Attrs().Index, IP: ip})
		c, err := net.Dial("udp4", net.JoinHostPort(addr, "9"))
		if err != nil {
			return err
		}
		c.Write([]byte("who?"))
		c.Close()
		time.Sleep(500 * time.Millisecond)
		ns, err := netlink.NeighList(br.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.IP.Equal(ip) && n.HardwareAddr != nil {
				mac = n.HardwareAddr.String()
			}
		}
		return nil
	})
	return mac
}

func (w *egressWorld) guestMAC(t *testing.T) string {
	t.Helper()
	var mac string
	w.must(t, w.guest, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			mac = l.Attrs().HardwareAddr.String()
		}
		return err
	})
	return mac
}
