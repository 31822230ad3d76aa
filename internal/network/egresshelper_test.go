package network

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/config"
)

// helperFixture is user 1000's network (banger0, 172.16.0.0/24, 4 taps)
// next to user 2000's (banger1, 172.16.1.0/24).
func helperFixture(t *testing.T) helperCheck {
	t.Helper()
	links := newFakeLinks()
	cfg := config.Default()
	cfg.TapPoolSize = 4
	mine := SpecFromConfig(cfg, 1000, 1000)
	for i := range 4 {
		links.add(LinkInfo{Name: TapName("banger0", i), Kind: "tun", Master: "banger0", Tap: &TapInfo{TAP: true, Owner: 1000}})
		links.add(LinkInfo{Name: TapName("banger1", i), Kind: "tun", Master: "banger1", Tap: &TapInfo{TAP: true, Owner: 2000}})
	}
	// A tap of user 1000's pool name, but another user's and elsewhere.
	links.add(LinkInfo{Name: "banger0-tap9", Kind: "tun", Master: "banger0", Tap: &TapInfo{TAP: true, Owner: 1000}})
	return helperCheck{rec: mine, links: links}
}

func syncReq(h helperCheck, vms ...helperVM) helperRequest {
	spec := h.spec()
	return helperRequest{V: 1, Op: "sync", Spec: &spec, VMs: vms}
}

func vmReq(addr, tap, mode string, allow ...string) helperVM {
	return helperVM{Addr: netip.MustParseAddr(addr), Tap: tap, Policy: EgressPolicy{Mode: EgressMode(mode), Allow: allow}}
}

func TestHelperSyncAcceptsTheUsersOwnNetwork(t *testing.T) {
	h := helperFixture(t)
	got, err := h.sync(syncReq(h,
		vmReq("172.16.0.2", "banger0-tap0", "allow", "Example.ORG.", "203.0.113.0/24"),
		vmReq("172.16.0.3", "", "none"),
		vmReq("172.16.0.4", "banger0-tap3", "full")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Tap != "banger0-tap0" || strings.Join(got[0].Policy.Allow, ",") != "203.0.113.0/24,example.org" {
		t.Errorf("sync = %+v; want three VMs with normalised policies", got)
	}
}

func TestHelperRefusesHostileRequests(t *testing.T) {
	h := helperFixture(t)
	other := EgressSpec{Bridge: "banger1", BridgeIP: netip.MustParseAddr("172.16.1.1"), CIDR: netip.MustParsePrefix("172.16.1.0/24"), DNSPort: DNSPort}
	many := make([]string, maxAllowEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("h%d.example.org", i)
	}
	tooMany := make([]helperVM, 300)
	for i := range tooMany {
		tooMany[i] = vmReq(netip.AddrFrom4([4]byte{172, 16, 0, byte(2 + i%250)}).String(), "", "full")
	}
	for _, c := range []struct {
		name string
		req  helperRequest
		kind errdefs.Kind
		want string
	}{
		{"another user's bridge", helperRequest{Op: "sync", Spec: &other}, errdefs.KindConflict, "not the one set up for uid 1000"},
		{"no spec", helperRequest{Op: "sync"}, errdefs.KindConflict, "none given"},
		{"foreign cidr", syncReq(h, vmReq("172.16.1.2", "", "full")), errdefs.KindInvalid, "not in 172.16.0.0/24"},
		{"public address", syncReq(h, vmReq("8.8.8.8", "", "full")), errdefs.KindInvalid, "not in 172.16.0.0/24"},
		{"the bridge's address", syncReq(h, vmReq("172.16.0.1", "", "full")), errdefs.KindInvalid, "not a guest's"},
		{"broadcast", syncReq(h, vmReq("172.16.0.255", "", "full")), errdefs.KindInvalid, "not a guest's"},
		{"IPv6", syncReq(h, vmReq("fd00::2", "", "full")), errdefs.KindInvalid, "not in"},
		{"an address twice", syncReq(h, vmReq("172.16.0.2", "", "full"), vmReq("172.16.0.2", "", "none")), errdefs.KindInvalid, "twice"},
		{"other user's tap", syncReq(h, vmReq("172.16.0.2", "banger1-tap0", "full")), errdefs.KindInvalid, "not one of the 4 taps of banger0"},
		{"tap beyond the pool", syncReq(h, vmReq("172.16.0.2", "banger0-tap9", "full")), errdefs.KindInvalid, "not one of the 4 taps"},
		{"host interface", syncReq(h, vmReq("172.16.0.2", "eth0", "full")), errdefs.KindInvalid, "not one of the 4 taps"},
		{"control characters in a tap name", syncReq(h, vmReq("172.16.0.2", "banger0-tap0\x1b[2J", "full")), errdefs.KindInvalid, "?[2J"},
		{"a tap twice", syncReq(h, vmReq("172.16.0.2", "banger0-tap1", "full"), vmReq("172.16.0.3", "banger0-tap1", "full")), errdefs.KindInvalid, "two addresses"},
		{"bad mode", syncReq(h, vmReq("172.16.0.2", "", "everything")), errdefs.KindInvalid, "not one of full, none, allow"},
		{"bad name", syncReq(h, vmReq("172.16.0.2", "", "allow", "evil name;")), errdefs.KindInvalid, "not a DNS name"},
		{"oversized allow list", syncReq(h, vmReq("172.16.0.2", "", "allow", many...)), errdefs.KindInvalid, "at most 256"},
		{"more VMs than addresses", syncReq(h, tooMany...), errdefs.KindInvalid, "holds at most 253"},
	} {
		_, err := h.sync(c.req)
		if err == nil || errdefs.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v (kind %s); want %s containing %q", c.name, err, errdefs.KindOf(err), c.kind, c.want)
		}
	}
}

func TestHelperRefusesATapNotOwnedByTheUser(t *testing.T) {
	h := helperFixture(t)
	l := h.links.(*fakeLinks)
	l.links["banger0-tap2"].Tap.Owner = 2000
	if _, err := h.sync(syncReq(h, vmReq("172.16.0.2", "banger0-tap2", "full"))); err == nil || !strings.Contains(err.Error(), "not a tap of uid 1000") {
		t.Errorf("a tap owned by uid 2000: err = %v", err)
	}
	delete(l.links, "banger0-tap3")
	if _, err := h.sync(syncReq(h, vmReq("172.16.0.2", "banger0-tap3", "full"))); err == nil {
		t.Error("a missing tap was accepted")
	}
}

func TestHelperLearnChecks(t *testing.T) {
	h := helperFixture(t)
	ips := func(n int) []netip.Addr {
		out := make([]netip.Addr, n)
		for i := range out {
			out[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		}
		return out
	}
	if err := h.learn(helperRequest{VM: netip.MustParseAddr("172.16.0.2"), IPs: ips(3), TTL: 60}); err != nil {
		t.Errorf("a learn for the user's VM: %v", err)
	}
	for _, c := range []struct {
		name string
		req  helperRequest
	}{
		{"foreign VM", helperRequest{VM: netip.MustParseAddr("172.16.1.2"), IPs: ips(1)}},
		{"no VM", helperRequest{IPs: ips(1)}},
		{"too many addresses", helperRequest{VM: netip.MustParseAddr("172.16.0.2"), IPs: ips(maxLearned + 1)}},
		{"IPv6", helperRequest{VM: netip.MustParseAddr("172.16.0.2"), IPs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}},
		{"negative ttl", helperRequest{VM: netip.MustParseAddr("172.16.0.2"), IPs: ips(1), TTL: -1}},
	} {
		if err := h.learn(c.req); errdefs.KindOf(err) != errdefs.KindInvalid {
			t.Errorf("%s: err = %v; want invalid", c.name, err)
		}
	}
}

// TestHelperClientResyncsAfterReconnect: when the helper restarts, the
// client's next call reconnects and sends the last sync first.
func TestHelperClientResyncsAfterReconnect(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "h.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns [][]string
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nil)
			mu.Unlock()
			r := bufio.NewReader(c)
			for {
				line, err := readLine(r)
				if err != nil {
					break
				}
				var req helperRequest
				json.Unmarshal(line, &req)
				mu.Lock()
				conns[n] = append(conns[n], req.Op)
				mu.Unlock()
				c.Write([]byte(`{"v":1}` + "\n"))
				if n == 0 {
					break // the helper restarts after the first answer
				}
			}
			c.Close()
		}
	}()
	c := HelperEgress(sock)
	defer c.Close()
	spec := EgressSpec{Bridge: "banger0"}
	if err := c.Sync(spec, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Learn(netip.MustParseAddr("172.16.0.2"), nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := fmt.Sprint(conns)
	mu.Unlock()
	if want := "[[sync] [sync learn]]"; got != want {
		t.Errorf("requests per connection = %s, want %s", got, want)
	}
}

func TestHelperClientNamesTheFixWhenNoHelperAnswers(t *testing.T) {
	err := HelperEgress(filepath.Join(t.TempDir(), "none.sock")).Ping()
	if err == nil || !strings.Contains(err.Error(), "system setup") {
		t.Errorf("ping without a helper: %v; want an error naming system setup", err)
	}
}

// The helper answers its own version, refuses another and anything that
// is not a request, before it looks at any record.
func TestHelperRefusesOtherVersionsAndGarbage(t *testing.T) {
	o := EgressHelperOptions{}
	for _, c := range []struct {
		line string
		kind errdefs.Kind
		want string
	}{
		{`{"v":2,"op":"sync"}`, errdefs.KindUnsupported, "protocol version 2; this helper speaks 1"},
		{`{"op":"ping"}`, errdefs.KindUnsupported, "protocol version 0"},
		{`not json`, errdefs.KindInvalid, "not a request"},
	} {
		resp := handleHelper([]byte(c.line), o)
		if errdefs.Kind(resp.Kind) != c.kind || !strings.Contains(resp.Error, c.want) {
			t.Errorf("%s: %+v; want %s containing %q", c.line, resp, c.kind, c.want)
		}
	}
	if resp := handleHelper([]byte(`{"v":1,"op":"ping"}`), o); resp.Error != "" {
		t.Errorf("ping: %+v", resp)
	}
}

// TestHelperClientWaitsForARestartingHelper: a helper that goes away and
// comes back within helperRestartWait costs the daemon no failed call.
func TestHelperClientWaitsForARestartingHelper(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "h.sock")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ops []string
	// serve answers on ln; the first helper dies after one answer (its
	// connection and socket gone), the second lives until ln closes.
	serve := func(ln net.Listener, dies bool) {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				line, err := readLine(r)
				if err != nil {
					break
				}
				var req helperRequest
				json.Unmarshal(line, &req)
				mu.Lock()
				ops = append(ops, req.Op)
				mu.Unlock()
				c.Write([]byte(`{"v":1}` + "\n"))
				if dies {
					break
				}
			}
			c.Close()
			if dies {
				ln.Close()
				return
			}
		}
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go serve(ln, true)
	c := HelperEgress(sock)
	if err := c.Sync(EgressSpec{Bridge: "banger0"}, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // the first helper is gone
	back := make(chan net.Listener, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(500 * time.Millisecond)
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			back <- nil
			return
		}
		wg.Add(1)
		go serve(l, false)
		back <- l
	}()
	if err := c.Learn(netip.MustParseAddr("172.16.0.2"), nil, time.Minute); err != nil {
		t.Errorf("a call while the helper restarts: %v", err)
	}
	c.Close()
	if l := <-back; l != nil {
		l.Close()
	}
	wg.Wait()
	mu.Lock()
	got := strings.Join(ops, " ")
	mu.Unlock()
	if got != "sync sync learn" {
		t.Errorf("ops = %q; want the sync, then after the restart the sync again and the learn", got)
	}
}
