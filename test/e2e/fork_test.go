//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/api"
)

// TestForkVM forks a busybox VM that runs a counter session, twice. Each
// fork answers SSH on its own name and address with its own host key and
// machine-id, runs the parent's session on from where it was, and draws
// its own random stream; the parent runs on untouched; deleting a fork
// frees its lease, TAP, pinned key and files and leaves the parent
// working, and deleting the parent leaves a fork working.
func TestForkVM(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	t0 := time.Now()
	e.ok("vm", "create", "--name", "parent", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	created := time.Since(t0)
	e.ssh("parent", "echo from-parent > /root/marker && sync")
	e.ok("vm", "session", "start", "parent", "--name", "counter", "--", "sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 1; done`)
	count := func(vm string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(e.ssh(vm, "cat /tmp/count")))
		return n
	}
	waitUntil(t, "the parent's counter to reach 3", time.Minute, func() bool { return count("parent") >= 3 })
	parent := e.vm("parent")
	parentID := strings.TrimSpace(e.ssh("parent", "cat /etc/machine-id 2>/dev/null; true"))

	// sshAt runs hostname over ssh at a VM's address with banger's pinned
	// known_hosts and strict checking: the key must be the one pinned for
	// that address.
	key := filepath.Join(e.home, "config", "banger", "ssh", "id_ed25519")
	kh := filepath.Join(e.home, "config", "banger", "ssh", "known_hosts")
	sshAt := func(addr string) string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", e.ns.Name, "ssh", "-i", key, "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=30",
			"root@"+addr, "hostname").CombinedOutput()
		if err != nil {
			t.Errorf("ssh root@%s: %v: %s", addr, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	var fork api.VM
	t.Run("fork of a running vm with a session", func(t *testing.T) {
		before := count("parent")
		// The parent pings its gateway twice a second, and so does its
		// fork from the instant it resumes: had the fork's link been up
		// before its reidentify, the bridge would have learned the
		// parent's MAC on the fork's TAP.
		e.ok("vm", "session", "start", "parent", "--name", "pinger", "--", "sh", "-c", `ping -i 0.5 $(ip route | awk '/default/ {print $3}') > /dev/null`)
		fdb := monitorFDB(t, e)
		t0 := time.Now()
		e.ok("vm", "fork", "parent", "--name", "f1")
		forked := time.Since(t0)
		t.Logf("fork of a %d MiB guest -> running: %s; its cold create took %s (fork/create %.2f)", parent.MemoryMiB,
			forked.Round(100*time.Millisecond), created.Round(100*time.Millisecond), forked.Seconds()/created.Seconds())
		fork = e.vm("f1")
		dlog, _ := os.ReadFile(filepath.Join(e.home, "state", "banger", "bangerd.log"))
		for _, l := range strings.Split(string(dlog), "\n") {
			if strings.Contains(l, "resumed after saving its state for a fork") {
				t.Logf("the parent's pause for the fork: %s", l)
			}
		}
		for _, l := range fdb() {
			if f := strings.Fields(l); len(f) >= 3 && strings.EqualFold(f[0], parent.MAC) && f[1] == "dev" && f[2] == fork.TAP {
				t.Errorf("the bridge learned the parent's MAC on the fork's TAP (%q): the fork spoke as its parent", l)
				break
			}
		}
		if fork.State != api.VMRunning || fork.PID == parent.PID || fork.IP == "" || fork.IP == parent.IP ||
			fork.MAC == parent.MAC || fork.TAP == "" || fork.TAP == parent.TAP {
			t.Fatalf("fork = %+v; want running with its own process, address, MAC and TAP (parent %+v)", fork, parent)
		}
		if fork.HostKey == "" || fork.HostKey == parent.HostKey {
			t.Errorf("fork's pinned host key %q, parent's %q: want a new one", fork.HostKey, parent.HostKey)
		}
		if got := strings.TrimSpace(e.ssh("f1", "hostname")); got != "f1" {
			t.Errorf("ssh f1: hostname %q", got)
		}
		if got := sshAt(fork.IP); got != "f1" {
			t.Errorf("ssh at the fork's address %s: hostname %q", fork.IP, got)
		}
		if got := sshAt(parent.IP); got != "parent" {
			t.Errorf("ssh at the parent's address %s: hostname %q", parent.IP, got)
		}
		if got := strings.TrimSpace(e.ssh("f1", "cat /sys/class/net/eth0/address")); got != fork.MAC {
			t.Errorf("the fork's eth0 MAC is %s, want %s", got, fork.MAC)
		}
		id := strings.TrimSpace(e.ssh("f1", "cat /etc/machine-id"))
		if len(id) != 32 || id == parentID {
			t.Errorf("fork's machine-id %q, parent's %q: want a new one", id, parentID)
		}
		if got := strings.TrimSpace(e.ssh("f1", "cat /root/marker")); got != "from-parent" {
			t.Errorf("the fork's /root/marker = %q, want the parent's from-parent", got)
		}
		// The session runs on in the fork from where it was.
		if s := e.session("f1", "counter"); s.State != api.SessionRunning {
			t.Errorf("the fork's counter session = %+v; want running", s)
		}
		n := count("f1")
		if n < before {
			t.Errorf("the fork's counter reads %d, below the parent's %d before the fork: it started again", n, before)
		}
		waitUntil(t, "the fork's counter to go on", 30*time.Second, func() bool { return count("f1") > n })
		if _, err := os.Stat(filepath.Join(fork.Dir, "fork.state")); err == nil {
			t.Error("the fork's copy of the saved state is left")
		}
	})

	t.Run("two forks draw different random streams", func(t *testing.T) {
		e.ok("vm", "fork", "parent", "--name", "f2")
		f2 := e.vm("f2")
		if f2.HostKey == fork.HostKey || f2.HostKey == parent.HostKey {
			t.Errorf("the second fork's host key is another vm's")
		}
		id1 := strings.TrimSpace(e.ssh("f1", "cat /etc/machine-id"))
		id2 := strings.TrimSpace(e.ssh("f2", "cat /etc/machine-id"))
		if id1 == id2 {
			t.Errorf("both forks have machine-id %s", id1)
		}
		read := "for i in 1 2 3 4; do cat /proc/sys/kernel/random/uuid; done"
		u1, u2 := strings.Fields(e.ssh("f1", read)), strings.Fields(e.ssh("f2", read))
		t.Logf("f1 uuids %v\nf2 uuids %v", u1, u2)
		for _, u := range u1 {
			if strings.Contains(strings.Join(u2, " "), u) {
				t.Errorf("both forks drew uuid %s", u)
			}
		}
		if got := sshAt(f2.IP); got != "f2" {
			t.Errorf("ssh at the second fork's address %s: hostname %q", f2.IP, got)
		}
	})

	t.Run("the parent is unaffected", func(t *testing.T) {
		v := e.vm("parent")
		if v.State != api.VMRunning || v.PID != parent.PID || v.IP != parent.IP || v.HostKey != parent.HostKey {
			t.Errorf("parent after the forks = %+v; want running as before", v)
		}
		if s := e.session("parent", "counter"); s.State != api.SessionRunning {
			t.Errorf("the parent's counter session = %+v; want running", s)
		}
		n := count("parent")
		waitUntil(t, "the parent's counter to go on", 30*time.Second, func() bool { return count("parent") > n })
		if got := strings.TrimSpace(e.ssh("parent", "hostname; cat /sys/class/net/eth0/address")); got != "parent\n"+parent.MAC {
			t.Errorf("the parent's hostname and MAC: %q", got)
		}
	})

	t.Run("deleting a fork frees it and leaves the parent working", func(t *testing.T) {
		e.ok("vm", "delete", "f1")
		e.assertNetworkFreed("f1")
		if _, err := os.Stat(fork.Dir); err == nil {
			t.Errorf("the deleted fork's directory %s is left", fork.Dir)
		}
		if procRuns(fork.PID) {
			t.Errorf("the deleted fork's VMM (pid %d) still runs", fork.PID)
		}
		if got := strings.TrimSpace(e.ssh("parent", "hostname")); got != "parent" {
			t.Errorf("ssh parent after the fork's delete: %q", got)
		}
		if got := sshAt(parent.IP); got != "parent" {
			t.Errorf("ssh at the parent's address after the fork's delete: %q", got)
		}
	})

	t.Run("deleting the parent leaves a fork working", func(t *testing.T) {
		e.ok("vm", "delete", "parent")
		e.assertNetworkFreed("parent")
		if got := strings.TrimSpace(e.ssh("f2", "hostname")); got != "f2" {
			t.Errorf("ssh f2 after the parent's delete: %q", got)
		}
		e.ok("vm", "delete", "f2")
		e.assertNetworkFreed("f2")
	})
}

// monitorFDB watches what banger's bridge in the test's namespace learns
// (bridge monitor fdb) until the returned function, which stops it and
// returns the lines seen.
func monitorFDB(t *testing.T, e *env) func() []string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", e.ns.Name, "bridge", "monitor", "fdb")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("bridge monitor fdb: %v", err)
	}
	return func() []string {
		time.Sleep(time.Second) // the last events
		cmd.Process.Kill()
		cmd.Wait()
		return strings.Split(out.String(), "\n")
	}
}
