//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/testutil/fixture"
	"banger/internal/vmm"
)

func (e *env) vm(name string) api.VM {
	e.t.Helper()
	var v api.VM
	if err := json.Unmarshal([]byte(e.ok("vm", "show", "--json", name)), &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) ssh(name string, cmd ...string) string {
	e.t.Helper()
	return e.ok(append([]string{"vm", "ssh", name, "--"}, cmd...)...)
}

// TestVMLifecycle is the spine: create a VM from a registered image, reach
// it over SSH with a pinned host key, stop and start it keeping /root,
// delete it leaving nothing behind.
func TestVMLifecycle(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	k := fixture.DebianKernel(t)

	t0 := time.Now()
	e.ok("vm", "create", "--name", "one", "--image", "deb", "--memory", "512", "--disk-size", "2G")
	t.Logf("create -> ready: %s", time.Since(t0).Round(100*time.Millisecond))
	v := e.vm("one")
	if v.State != "running" || v.IP == "" {
		t.Fatalf("vm after create = %+v", v)
	}
	if got := strings.TrimSpace(e.ssh("one", "uname", "-r")); got != k.Release {
		t.Errorf("guest kernel = %q, want %q", got, k.Release)
	}
	if logs := e.ok("vm", "logs", "one"); !strings.Contains(logs, "Linux version") {
		t.Errorf("vm logs has no kernel banner (\"Linux version\"); it has %d bytes", len(logs))
	}
	assertAgentIsInit(t, e, "one")
	// The image's kernel modules are there for the booted kernel.
	e.ssh("one", "test -f /lib/modules/$(uname -r)/kernel/drivers/net/tun.ko")
	ports := e.ok("vm", "ports", "one")
	if !strings.Contains(ports, " 22 ") {
		t.Errorf("vm ports does not list sshd on 22:\n%s", ports)
	}
	if m := e.ssh("one", "findmnt -n -o SOURCE /root || grep ' /root ' /proc/mounts"); !strings.Contains(m, "/dev/vdb") {
		t.Errorf("/root is not the work disk: %q", m)
	}
	// ssh joins its arguments into one remote shell command line.
	e.ssh("one", "echo kept > /root/marker && sync")
	e.ok("vm", "stop", "one")
	if v := e.vm("one"); v.State != "stopped" || v.PID != 0 {
		t.Fatalf("after stop: %+v", v)
	}
	e.ok("vm", "start", "one")
	if got := strings.TrimSpace(e.ssh("one", "cat", "/root/marker")); got != "kept" {
		t.Errorf("/root/marker after stop and start = %q, want kept", got)
	}
	before := e.vm("one")
	e.ok("vm", "restart", "one")
	if v := e.vm("one"); v.State != "running" || v.PID == before.PID {
		t.Errorf("after restart: state %s, pid %d (was %d); want running in a new vmm process", v.State, v.PID, before.PID)
	}
	if got := strings.TrimSpace(e.ssh("one", "cat", "/root/marker")); got != "kept" {
		t.Errorf("/root/marker after vm restart = %q, want kept", got)
	}

	v = e.vm("one")
	if !strings.Contains(e.knownHosts(), "one.vm,") {
		t.Fatalf("known_hosts has no pinned key for one.vm before delete:\n%s", e.knownHosts())
	}
	e.ok("vm", "delete", "one")
	assertNoTrace(t, e, v)
}

// assertAgentIsInit checks the guest agent is the guest's init (the
// fixture images have no init of their own) and serves in pid1 mode, so
// the agent's init duties are what the other tests exercise.
func assertAgentIsInit(t *testing.T, e *env, name string) {
	t.Helper()
	if got := strings.TrimSpace(e.ssh(name, "readlink /proc/1/exe")); got != agentproto.GuestBinaryPath {
		t.Errorf("PID 1 of %s runs %q, want the agent %s", name, got, agentproto.GuestBinaryPath)
	}
	// Every agent process's arguments, one line each.
	procs := e.ssh(name, `for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = `+agentproto.GuestBinaryPath+` ] && tr '\0' ' ' < $p/cmdline && echo; done; true`)
	if !strings.Contains(procs, "serve --init-mode="+agentproto.InitModePID1) {
		t.Errorf("no agent of %s serves in %s mode; agent processes:\n%s", name, agentproto.InitModePID1, procs)
	}
}

// assertNoTrace checks a deleted VM left no process, TAP, lease, disk or
// runtime file.
func assertNoTrace(t *testing.T, e *env, v api.VM) {
	t.Helper()
	if v.PID > 0 && vmm.Alive(v.PID, procStart(v.PID)) {
		t.Errorf("vm process %d still running", v.PID)
	}
	for _, p := range []string{v.Dir, v.RuntimeDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
	// The TAP stays in the pool but must be free: nothing holds it open.
	if v.TAP != "" {
		out, _ := e.inNS("ip", "-o", "link", "show", v.TAP).CombinedOutput()
		if strings.Contains(string(out), "state UP") && strings.Contains(string(out), "LOWER_UP") {
			t.Errorf("tap %s still carries a link after delete: %s", v.TAP, out)
		}
	}
	out, _, _ := e.run("vm", "list", "--json")
	if strings.Contains(out, `"`+v.Name+`"`) {
		t.Errorf("vm %s still listed", v.Name)
	}
	e.assertNetworkFreed(v.Name)
}

func procStart(pid int) uint64 {
	st, _ := vmm.ProcStartTime(pid)
	return st
}

// TestPowerButton: QEMU's ACPI power button (what vm stop falls back to
// when the agent cannot be reached) shuts down a guest whose init is the
// agent: PID 1 reads the button from the kernel's input devices.
func TestPowerButton(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "pb", "--image", "bb", "--memory", "256", "--disk-size", "256M")
	v := e.vm("pb")
	e.ssh("pb", "echo pressed-and-kept > /root/marker")

	qmp, err := net.Dial("unix", filepath.Join(v.RuntimeDir, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer qmp.Close()
	rd := bufio.NewReader(qmp)
	rd.ReadString('\n') // greeting
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"system_powerdown"}`} {
		fmt.Fprintln(qmp, cmd)
		for { // events ({"event": ...}) may come before the answer
			line, err := rd.ReadString('\n')
			if err != nil || strings.Contains(line, `"error"`) {
				t.Fatalf("qmp %s: %q, %v", cmd, line, err)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for e.vm("pb").State != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("the guest ignored the power button; console:\n%s", fileTail(filepath.Join(v.Dir, "console.log")))
		}
		time.Sleep(500 * time.Millisecond)
	}
	console, _ := os.ReadFile(filepath.Join(v.Dir, "console.log"))
	if !strings.Contains(string(console), "power button pressed") {
		t.Errorf("the console does not say the agent saw the power button:\n%s", fileTail(filepath.Join(v.Dir, "console.log")))
	}
	// A clean shutdown: /root was synced and unmounted.
	e.ok("vm", "start", "pb")
	if got := strings.TrimSpace(e.ssh("pb", "cat /root/marker")); got != "pressed-and-kept" {
		t.Errorf("marker after the power-button shutdown = %q", got)
	}
}
