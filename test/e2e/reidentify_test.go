//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// TestReidentifyBusybox drives the guest side of a restore on a real
// busybox guest (the agent is init, the builtin SSH server serves): with
// the daemon stopped, the test speaks to the agent on the VM's socket,
// sets the clock after turning it back, reseeds the kernel pool, and gives
// the VM a new hostname, MAC address, IP address, machine-id and host key.
// An address not leased to the VM gets nowhere (its TAP is bound to its
// lease); given its own address back, the guest answers SSH there with
// its newest key.
func TestReidentifyBusybox(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	testReidentify(t, e, "bb")
}

// TestReidentifyDebian is the same on the Debian image, whose OpenSSH
// sshd must load its new host keys while it runs.
func TestReidentifyDebian(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	testReidentify(t, e, "deb")
}

func testReidentify(t *testing.T, e *env, image string) {
	e.ok("vm", "create", "--name", "parent", "--image", image)
	v := e.vm("parent")
	oldKey := v.HostKey
	// Nothing else may speak to the agent's single-client socket.
	e.killDaemon()
	defer e.startDaemon() // so cleanup can delete the VM

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := agentproto.Connect(ctx, agentproto.UnixDialer(filepath.Join(v.RuntimeDir, "agent.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(script string) string {
		t.Helper()
		var out, errb bytes.Buffer
		st, err := c.Run(ctx, agentproto.ExecRequest{Argv: []string{"/bin/sh", "-c", script}}, agentproto.Stdio{Stdout: &out, Stderr: &errb})
		if err != nil || !st.Success() {
			t.Fatalf("guest: %s: %v %v\n%s%s", script, st, err, out.String(), errb.String())
		}
		return strings.TrimSpace(out.String())
	}

	// The clock, as after a suspend of years.
	run("date -u -s '2020-01-01 00:00:00'")
	clk, err := c.SetClock(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	guestNow, _ := strconv.ParseInt(run("date +%s"), 10, 64)
	if d := time.Since(time.Unix(guestNow, 0)); d < -10*time.Second || d > 10*time.Second || clk.Moved < 5*365*24*time.Hour {
		t.Errorf("after set_clock the guest is %s off the host; moved %s, want years", d, clk.Moved)
	}
	t.Logf("set_clock moved the guest clock by %s", clk.Moved.Round(time.Second))

	// The random pool.
	rs, err := c.Reseed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rs.CreditedBits != agentproto.ReseedBytes*8 || !rs.Reseeded {
		t.Errorf("reseed = %+v, want %d bits credited and the CRNG reseeded", rs, agentproto.ReseedBytes*8)
	}

	// The identity, with the network values of the boot's command line.
	boot, err := guestagent.ParseCmdline(run("cat /proc/cmdline"))
	if err != nil || !boot.Addr.IsValid() {
		t.Fatalf("guest command line: %+v, %v", boot, err)
	}
	oldMAC, oldID := run("cat /sys/class/net/eth0/address"), run("cat /etc/machine-id 2>/dev/null; true")
	// An address 100 past the VM's, in its prefix (the test's only VM).
	next := boot.Addr.Addr()
	for range 100 {
		next = next.Next()
	}
	newAddr := netip.PrefixFrom(next, boot.Addr.Bits())
	if !boot.Addr.Masked().Contains(next) || next == boot.Gateway {
		t.Fatalf("no spare address 100 past %s in its prefix", boot.Addr)
	}
	var dns []string
	for _, d := range boot.DNS {
		dns = append(dns, d.String())
	}
	req := agentproto.ReidentifyRequest{Hostname: "reborn", MAC: "06:00:de:ad:be:ef", Addr: newAddr.String(),
		Gateway: boot.Gateway.String(), DNS: dns}
	t0 := time.Now()
	id, err := c.Reidentify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reidentify took %s: %+v", time.Since(t0).Round(time.Millisecond), id)

	if got := run("cat /proc/sys/kernel/hostname"); got != "reborn" {
		t.Errorf("hostname = %q, want reborn", got)
	}
	if got := run("cat /sys/class/net/eth0/address"); got != "06:00:de:ad:be:ef" || got == oldMAC {
		t.Errorf("eth0 MAC = %q (was %s), want 06:00:de:ad:be:ef", got, oldMAC)
	}
	if got := run("ip -4 -o addr show dev eth0"); !strings.Contains(got, " "+newAddr.String()+" ") || strings.Contains(got, " "+boot.Addr.String()+" ") {
		t.Errorf("eth0 addresses: %q, want %s and not %s", got, newAddr, boot.Addr)
	}
	if got := run("ip -4 route show default"); !strings.Contains(got, "via "+boot.Gateway.String()+" dev eth0") {
		t.Errorf("default route: %q, want via %s", got, boot.Gateway)
	}
	if got := run("cat /etc/machine-id"); got != id.MachineID || got == oldID {
		t.Errorf("machine-id = %q (was %q), want the new %q", got, oldID, id.MachineID)
	}
	if len(id.HostKeys.Keys) == 0 || id.HostKeys.Keys[0] == strings.TrimSpace(oldKey) {
		t.Errorf("host keys after reidentify %q, pinned before %q: want a new key", id.HostKeys.Keys, oldKey)
	}

	// An address not leased to the VM gets nowhere: its TAP is bound to
	// its lease (docs/networking.md), so the host never learns the new
	// address.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	key := filepath.Join(e.home, "config", "banger", "ssh", "id_ed25519")
	sshTo := func(addr netip.Addr, timeout string) (string, error) {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns.Name, "ssh", "-i", key, "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout="+timeout,
			"root@"+addr.String(), "hostname")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	os.WriteFile(kh, []byte(newAddr.Addr().String()+" "+id.HostKeys.Keys[0]+"\n"), 0o600)
	if out, err := sshTo(newAddr.Addr(), "5"); err == nil {
		t.Errorf("the unleased address %s answers ssh: %s", newAddr.Addr(), out)
	}

	// Given its own address back (with the new MAC), the guest answers
	// there with the keys of this second reidentify.
	req.Addr = boot.Addr.String()
	id2, err := c.Reidentify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := run("ip -4 -o addr show dev eth0"); !strings.Contains(got, " "+boot.Addr.String()+" ") || strings.Contains(got, " "+newAddr.String()+" ") {
		t.Errorf("eth0 addresses after the second reidentify: %q, want %s and not %s", got, boot.Addr, newAddr)
	}
	if len(id2.HostKeys.Keys) == 0 || id2.HostKeys.Keys[0] == id.HostKeys.Keys[0] {
		t.Fatalf("host keys after the second reidentify %q: want new ones", id2.HostKeys.Keys)
	}
	os.WriteFile(kh, []byte(boot.Addr.Addr().String()+" "+id2.HostKeys.Keys[0]+"\n"), 0o600)
	// sshd re-executes on the SIGHUP that loads its new keys: a
	// connection in that instant is refused, so try a few times.
	out, err := sshTo(boot.Addr.Addr(), "60")
	for i := 0; i < 5 && err != nil; i++ {
		time.Sleep(2 * time.Second)
		out, err = sshTo(boot.Addr.Addr(), "60")
	}
	if err != nil || out != "reborn" {
		t.Errorf("ssh to %s with the new host key: %v: %s", boot.Addr.Addr(), err, out)
	}
}
