package guestagent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/crypto/ssh"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// inOwnNamespaces re-runs the calling test in a child test binary that has
// network and UTS namespaces of its own (so a hostname or an interface the
// agent changes is the child's, never the host's) and reports whether the
// caller is that child. The child refuses to go on unless its namespaces
// differ from PID 1's.
func inOwnNamespaces(t *testing.T) bool {
	t.Helper()
	if os.Getenv("BANGER_IDENTITY_CHILD") != "" {
		for _, ns := range []string{"net", "uts"} {
			mine, _ := os.Readlink("/proc/self/ns/" + ns)
			init, _ := os.Readlink("/proc/1/ns/" + ns)
			if mine == "" || mine == init {
				t.Fatalf("the child shares the %s namespace of PID 1 (%s); refusing to change it", ns, mine)
			}
		}
		return true
	}
	if !isRoot() {
		t.Skip("needs root to create network and UTS namespaces")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "BANGER_IDENTITY_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespaced child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("namespaced child skipped:\n%s", out)
	}
	t.Logf("namespaced child:\n%s", out)
	return false
}

// guestRoot is a temporary guest root with the files reidentify rewrites,
// as a booted guest has them.
func guestRoot(t *testing.T) string {
	root := t.TempDir()
	files := map[string]string{
		"etc/hostname":            "parent\n",
		"etc/hosts":               "127.0.0.1\tlocalhost\n10.77.0.2\tparent\n",
		"etc/resolv.conf":         "nameserver 10.77.0.1\n",
		"etc/machine-id":          "0123456789abcdef0123456789abcdef\n",
		"var/lib/dbus/machine-id": "0123456789abcdef0123456789abcdef\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// parentNIC makes eth0 (one end of a veth pair) as a restored guest has it: up, with its parent's
// MAC address, address, a second address and default route.
func parentNIC(t *testing.T) netlink.Link {
	t.Helper()
	if lo, err := netlink.LinkByName("lo"); err != nil || netlink.LinkSetUp(lo) != nil {
		t.Fatalf("bringing lo up: %v", err)
	}
	mac, _ := net.ParseMAC("06:00:0a:4d:00:02")
	la := netlink.NewLinkAttrs()
	la.Name, la.HardwareAddr = "eth0", mac
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "peer0"}); err != nil {
		t.Fatalf("creating eth0: %v", err)
	}
	if peer, err := netlink.LinkByName("peer0"); err != nil || netlink.LinkSetUp(peer) != nil {
		t.Fatalf("bringing up eth0's peer: %v", err)
	}
	link, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.77.0.2/24", "10.78.0.9/16"} {
		addr, _ := netlink.ParseAddr(a)
		if err := netlink.AddrAdd(link, addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP("10.77.0.1")}); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestReidentifyInNamespaces gives a guest with the builtin SSH server a
// new identity through the client and checks every part of it: hostname,
// /etc files, machine-id, eth0's MAC address, addresses and default route,
// and the SSH host key the running server presents.
func TestReidentifyInNamespaces(t *testing.T) {
	if !inOwnNamespaces(t) {
		return
	}
	parentNIC(t)
	if err := syscall.Sethostname([]byte("parent")); err != nil {
		t.Fatal(err)
	}
	paths := testPaths(t)
	paths.Root = guestRoot(t)
	sshSrv, err := guestagent.NewSSHServer(paths, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sshAddr := serveBuiltinSSH(t, sshSrv)
	oldKey := presentedHostKey(t, sshAddr)
	e := newEnv(t, guestagent.Config{Paths: paths, SSH: sshSrv})
	c := e.connect()
	ctx := testCtx(t, 30*time.Second)

	req := agentproto.ReidentifyRequest{Hostname: "fork-2", MAC: "06:00:0a:4d:01:05", Addr: "10.77.1.5/24",
		Gateway: "10.77.1.1", DNS: []string{"10.77.1.1", "192.0.2.53"}}
	res, err := c.Reidentify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Hostname != "fork-2" || res.MAC != "06:00:0a:4d:01:05" || res.Addr != "10.77.1.5/24" {
		t.Errorf("result = %+v", res)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(res.MachineID) || res.MachineID == "0123456789abcdef0123456789abcdef" {
		t.Errorf("machine-id = %q, want a new 32-hex-digit id", res.MachineID)
	}
	checkIdentityFiles(t, paths.Root, res.MachineID)
	checkNIC(t)
	if h, _ := os.Hostname(); h != "fork-2" {
		t.Errorf("hostname = %q, want fork-2", h)
	}
	newKey := presentedHostKey(t, sshAddr)
	if string(newKey.Marshal()) == string(oldKey.Marshal()) {
		t.Error("the ssh server still presents the parent's host key")
	}
	if len(res.HostKeys.Keys) != 1 || res.HostKeys.Keys[0] != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newKey))) {
		t.Errorf("reported host keys %q, presented %s", res.HostKeys.Keys, ssh.MarshalAuthorizedKey(newKey))
	}

	// Again with the same identity: nothing to undo, same addresses.
	if _, err := c.Reidentify(ctx, req); err != nil {
		t.Fatalf("second reidentify: %v", err)
	}
	checkNIC(t)
}

func checkIdentityFiles(t *testing.T, root, machineID string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	if got := read("etc/hostname"); got != "fork-2\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	if got := read("etc/hosts"); !strings.Contains(got, "10.77.1.5\tfork-2\n") || strings.Contains(got, "parent") {
		t.Errorf("etc/hosts = %q, want fork-2 on 10.77.1.5 and no parent", got)
	}
	if got := read("etc/resolv.conf"); !strings.Contains(got, "nameserver 10.77.1.1\nnameserver 192.0.2.53\n") {
		t.Errorf("etc/resolv.conf = %q", got)
	}
	for _, f := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		if got := read(f); got != machineID+"\n" {
			t.Errorf("%s = %q, want %q", f, got, machineID)
		}
	}
}

// checkNIC wants eth0 up with only the new MAC address, address and
// default route.
func checkNIC(t *testing.T) {
	t.Helper()
	link, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got := link.Attrs().HardwareAddr.String(); got != "06:00:0a:4d:01:05" {
		t.Errorf("eth0 MAC = %s, want 06:00:0a:4d:01:05", got)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Error("eth0 is down")
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if strings.Join(got, " ") != "10.77.1.5/24" {
		t.Errorf("eth0 IPv4 addresses = %v, want only 10.77.1.5/24", got)
	}
	routes, _ := netlink.RouteList(link, netlink.FAMILY_V4)
	var gws []string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			gws = append(gws, r.Gw.String())
		}
	}
	if strings.Join(gws, " ") != "10.77.1.1" {
		t.Errorf("default routes via %v, want only via 10.77.1.1", gws)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/arp_notify"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("arp_notify = %q: the new address would not be announced", b)
	}
}

func serveBuiltinSSH(t *testing.T, srv *guestagent.SSHServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// presentedHostKey is the host key an SSH server at addr shows a client.
func presentedHostKey(t *testing.T, addr string) ssh.PublicKey {
	t.Helper()
	var key ssh.PublicKey
	seen := errors.New("host key seen")
	cfg := &ssh.ClientConfig{User: "root", Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { key = k; return seen }}
	if _, err := ssh.Dial("tcp", addr, cfg); !errors.Is(err, seen) {
		t.Fatalf("dialing ssh at %s: %v", addr, err)
	}
	return key
}

// TestReidentifyRefusesBeforeChangingAnything sends requests the client
// would refuse straight to the agent: each gets an invalid reply, and the
// guest keeps its name, files and NIC.
func TestReidentifyRefusesBeforeChangingAnything(t *testing.T) {
	if !inOwnNamespaces(t) {
		return
	}
	link := parentNIC(t)
	syscall.Sethostname([]byte("parent"))
	paths := testPaths(t)
	paths.Root = guestRoot(t)
	e := newEnv(t, guestagent.Config{Paths: paths})
	sess := e.rawSession()
	if rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: agentproto.ProtocolVersion})); rep.Error != nil {
		t.Fatalf("hello: %+v", rep.Error)
	}
	good := agentproto.ReidentifyRequest{Hostname: "fork", MAC: "06:00:0a:4d:01:05", Addr: "10.77.1.5/24", Gateway: "10.77.1.1"}
	for _, tc := range []struct {
		name string
		edit func(*agentproto.ReidentifyRequest)
	}{
		{"multicast MAC", func(r *agentproto.ReidentifyRequest) { r.MAC = "01:00:5e:00:00:01" }},
		{"short MAC", func(r *agentproto.ReidentifyRequest) { r.MAC = "06:00:0a:4d:01" }},
		{"gateway outside the prefix", func(r *agentproto.ReidentifyRequest) { r.Gateway = "10.77.2.1" }},
		{"network address", func(r *agentproto.ReidentifyRequest) { r.Addr = "10.77.1.0/24" }},
		{"no prefix", func(r *agentproto.ReidentifyRequest) { r.Addr = "10.77.1.5" }},
		{"hostname with a space", func(r *agentproto.ReidentifyRequest) { r.Hostname = "my host" }},
	} {
		req := good
		tc.edit(&req)
		rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallReidentify, req))
		wantKind(t, tc.name, rep, errdefs.KindInvalid)
	}
	if h, _ := os.Hostname(); h != "parent" {
		t.Errorf("hostname = %q after refused calls", h)
	}
	if b, _ := os.ReadFile(filepath.Join(paths.Root, "etc/machine-id")); string(b) != "0123456789abcdef0123456789abcdef\n" {
		t.Errorf("machine-id changed: %q", b)
	}
	now, _ := netlink.LinkByIndex(link.Attrs().Index)
	if now.Attrs().Flags&net.FlagUp == 0 || now.Attrs().HardwareAddr.String() != "06:00:0a:4d:00:02" {
		t.Errorf("eth0 changed: %s flags %v", now.Attrs().HardwareAddr, now.Attrs().Flags)
	}
}

// TestReidentifyRefusedWithoutRoot: an agent with no Paths.Root (as on a
// developer's host) refuses to rename the machine it runs on.
func TestReidentifyRefusedWithoutRoot(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	_, err := c.Reidentify(testCtx(t, 10*time.Second), agentproto.ReidentifyRequest{Hostname: "x", MAC: "06:00:00:00:00:01", Addr: "10.0.0.2/24"})
	if !errors.Is(err, errdefs.ErrUnsupported) {
		t.Fatalf("reidentify without a root: %v, want unsupported", err)
	}
}
