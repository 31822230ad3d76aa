package agentproto_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/testutil/hostileguest"
)

func TestReidentifyRequestParse(t *testing.T) {
	good := agentproto.ReidentifyRequest{Hostname: "fork-2", MAC: "06:00:ac:10:00:05", Addr: "172.16.0.5/24",
		Gateway: "172.16.0.1", DNS: []string{"172.16.0.1"}}
	if id, err := good.Parse(); err != nil || id.Addr.String() != "172.16.0.5/24" || id.Gateway.String() != "172.16.0.1" {
		t.Fatalf("Parse(good) = %v, %v", id, err)
	}
	v6 := agentproto.ReidentifyRequest{Hostname: "a.b", MAC: "06:00:00:00:00:01", Addr: "fd00::5/64", Gateway: "fd00::1"}
	if _, err := v6.Parse(); err != nil {
		t.Errorf("Parse(IPv6) = %v", err)
	}
	noRoute := agentproto.ReidentifyRequest{Hostname: "x", MAC: "06:00:00:00:00:01", Addr: "10.0.0.2/31"}
	if _, err := noRoute.Parse(); err != nil {
		t.Errorf("Parse(/31 without gateway) = %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*agentproto.ReidentifyRequest)
	}{
		{"empty hostname", "hostname", func(r *agentproto.ReidentifyRequest) { r.Hostname = "" }},
		{"long hostname", "hostname", func(r *agentproto.ReidentifyRequest) { r.Hostname = strings.Repeat("a", 65) }},
		{"hostname with a leading hyphen", "hostname", func(r *agentproto.ReidentifyRequest) { r.Hostname = "-x" }},
		{"hostname with an empty label", "hostname", func(r *agentproto.ReidentifyRequest) { r.Hostname = "a..b" }},
		{"hostname with a newline", "hostname", func(r *agentproto.ReidentifyRequest) { r.Hostname = "a\nb" }},
		{"garbage MAC", "MAC", func(r *agentproto.ReidentifyRequest) { r.MAC = "zz:00:ac:10:00:05" }},
		{"EUI-64 MAC", "MAC", func(r *agentproto.ReidentifyRequest) { r.MAC = "06:00:ac:10:00:05:00:01" }},
		{"multicast MAC", "unicast", func(r *agentproto.ReidentifyRequest) { r.MAC = "07:00:ac:10:00:05" }},
		{"zero MAC", "unicast", func(r *agentproto.ReidentifyRequest) { r.MAC = "00:00:00:00:00:00" }},
		{"no prefix", "ADDR/PREFIX", func(r *agentproto.ReidentifyRequest) { r.Addr = "172.16.0.5" }},
		{"network address", "network address", func(r *agentproto.ReidentifyRequest) { r.Addr = "172.16.0.0/24" }},
		{"broadcast address", "broadcast", func(r *agentproto.ReidentifyRequest) { r.Addr = "172.16.0.255/24" }},
		{"loopback", "cannot be", func(r *agentproto.ReidentifyRequest) { r.Addr = "127.0.0.2/8" }},
		{"gateway outside the prefix", "inside 172.16.0.0/24", func(r *agentproto.ReidentifyRequest) { r.Gateway = "172.16.1.1" }},
		{"gateway is the address", "another address", func(r *agentproto.ReidentifyRequest) { r.Gateway = "172.16.0.5" }},
		{"gateway of the other family", "inside", func(r *agentproto.ReidentifyRequest) { r.Gateway = "fd00::1" }},
		{"garbage gateway", "gateway", func(r *agentproto.ReidentifyRequest) { r.Gateway = "gw" }},
		{"four DNS servers", "at most 3", func(r *agentproto.ReidentifyRequest) { r.DNS = []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "9.9.9.9"} }},
		{"garbage DNS server", "DNS server", func(r *agentproto.ReidentifyRequest) { r.DNS = []string{"dns"} }},
	} {
		req := good
		tc.edit(&req)
		_, err := req.Parse()
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an invalid error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestRestoreCallsNeedAgent11 talks to an agent that says it speaks 1.0:
// each new call is refused on the host with "too old", and nothing reaches
// the guest.
func TestRestoreCallsNeedAgent11(t *testing.T) {
	g := hostileguest.New()
	g.Handle(agentproto.CallHello, hostileguest.Reply(agentproto.Hello{Protocol: "1.0", Software: "banger-vsock-agent old"}))
	answered := hostileguest.ErrorReply(errdefs.KindInternal, "the call reached the guest")
	for _, call := range []string{agentproto.CallSetClock, agentproto.CallReseed, agentproto.CallReidentify} {
		g.Handle(call, answered)
	}
	c := hostileClient(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err1 := c.SetClock(ctx, time.Now())
	_, err2 := c.Reseed(ctx, nil)
	_, err3 := c.Reidentify(ctx, agentproto.ReidentifyRequest{Hostname: "x", MAC: "06:00:00:00:00:01", Addr: "10.0.0.2/24"})
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "too old") || !strings.Contains(err.Error(), "1.0") {
			t.Errorf("call %d to a 1.0 agent: %v, want unsupported, too old, naming 1.0", i, err)
		}
	}
	for _, call := range []string{agentproto.CallSetClock, agentproto.CallReseed, agentproto.CallReidentify} {
		if n := g.Calls(call); n != 0 {
			t.Errorf("%s reached the guest %d times", call, n)
		}
	}
}

// TestReidentifiedReplyIsBounded: a guest's answer to reidentify is cut
// like host_key's, and an oversized one drops the connection.
func TestReidentifiedReplyIsBounded(t *testing.T) {
	g := hostileguest.New()
	long := strings.Repeat("k", 64<<10)
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = "ssh-ed25519 " + strings.Repeat("A", 1000)
	}
	g.Handle(agentproto.CallReidentify, hostileguest.Reply(agentproto.Reidentified{Hostname: long, MAC: long[:1000], Addr: long[:1000],
		MachineID: long[:1000], HostKeys: agentproto.HostKeys{Server: long[:100], Keys: keys}}))
	c := hostileClient(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := agentproto.ReidentifyRequest{Hostname: "x", MAC: "06:00:00:00:00:01", Addr: "10.0.0.2/24"}
	res, err := c.Reidentify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hostname) > 256 || len(res.MAC) > 32 || len(res.Addr) > 64 || len(res.MachineID) > 64 || len(res.HostKeys.Keys) > 16 || len(res.HostKeys.Server) > 16 {
		t.Errorf("unbounded reply: hostname %d, mac %d, ip %d, machine-id %d, %d keys, server %d",
			len(res.Hostname), len(res.MAC), len(res.Addr), len(res.MachineID), len(res.HostKeys.Keys), len(res.HostKeys.Server))
	}
	g.Handle(agentproto.CallReidentify, hostileguest.Oversized(agentproto.ReplyLimit(agentproto.CallReidentify)+1))
	if _, err := c.Reidentify(ctx, req); !errors.Is(err, agentproto.ErrLineTooLong) {
		t.Errorf("oversized reidentify reply: %v, want %v", err, agentproto.ErrLineTooLong)
	}
}
