//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/vmm"
)

// TestPauseResumeWithAttachedSession: a pipe-mode session stays attached
// across a pause longer than the host's keep-alive interval plus its
// timeout (45 s); a line sent while the VM is paused is not answered
// until it is resumed, then it is.
func TestPauseResumeWithAttachedSession(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "p", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	before := e.vm("p")
	e.ok("vm", "session", "start", "p", "--name", "echo", "--stdin-mode", "pipe", "--", "sh", "-c", `while read -r l; do echo "out:$l"; done`)
	a := e.start("vm", "session", "attach", "p", "echo")
	a.send("one")
	a.expect("out:one")

	var v api.VM
	if err := json.Unmarshal([]byte(e.ok("vm", "pause", "p", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.State != api.VMPaused || v.PID != before.PID {
		t.Fatalf("after vm pause: %+v; want paused in the same process", v)
	}
	a.send("two")
	select {
	case l, ok := <-a.lines:
		t.Fatalf("the paused guest answered %q (open %v)", l, ok)
	case <-time.After(50 * time.Second):
	}
	if _, stderr, code := e.run("vm", "session", "list", "p"); code == 0 || !strings.Contains(stderr, "vm resume p") {
		t.Errorf("session list of a paused vm: exit %d, %q; want a refusal naming 'vm resume'", code, stderr)
	}
	if out := e.ok("vm", "resume", "p"); !strings.Contains(out, "running") {
		t.Errorf("vm resume said %q", out)
	}
	a.expect("out:two")
	a.send("three")
	a.expect("out:three")
	if s := e.session("p", "echo"); s.State != api.SessionRunning || !s.Attached {
		t.Errorf("session after the resume = %+v; want running and attached", s)
	}
}

// TestSuspendDaemonRestartStart: a counter started before 'vm stop
// --suspend' counts on from where it was after a daemon restart and 'vm
// start'; /root holds what was written before; the suspended VM held no
// VMM process and no TAP.
func TestSuspendDaemonRestartStart(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "s", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	e.ssh("s", "echo kept > /root/marker")
	e.ok("vm", "session", "start", "s", "--name", "counter", "--", "sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 1; done`)
	count := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(e.ssh("s", "cat /tmp/count")))
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for count() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	running := e.vm("s")
	t0 := time.Now()
	e.ok("vm", "stop", "s", "--suspend")
	t.Logf("suspend of a %d MiB guest took %s", running.MemoryMiB, time.Since(t0).Round(100*time.Millisecond))
	// The counter's last value before the suspend ended it is at most
	// what it shows now plus the seconds the suspend took.
	saved := e.vm("s")
	if saved.State != api.VMSuspended || saved.PID != 0 || saved.TAP != "" || saved.StateBytes <= 0 {
		t.Fatalf("after vm stop --suspend: %+v; want suspended, no process, no tap, a saved state", saved)
	}
	t.Logf("saved state: %d MiB on disk", saved.StateBytes>>20)
	if procRuns(running.PID) {
		t.Errorf("the suspended vm's VMM (pid %d) still runs", running.PID)
	}
	for _, a := range e.tapAssignments() {
		if a.VM == "s" {
			t.Errorf("the suspended vm still holds tap %s", a.Tap)
		}
	}

	e.killDaemon()
	e.startDaemon()
	if v := e.vm("s"); v.State != api.VMSuspended {
		t.Fatalf("after a daemon restart the vm is %s, want suspended", v.State)
	}
	t0 = time.Now()
	e.ok("vm", "start", "s")
	t.Logf("restore -> running: %s", time.Since(t0).Round(100*time.Millisecond))
	if v := e.vm("s"); v.State != api.VMRunning || v.PID == running.PID || v.TAP == "" {
		t.Fatalf("after vm start: %+v; want running in a new VMM process with a tap", v)
	}
	first := count()
	t.Logf("counter: at least %d before the suspend, %d right after the restore", 5, first)
	if first < 5 {
		t.Errorf("the counter reads %d after the restore; it started again instead of going on from 5 or more", first)
	}
	time.Sleep(3 * time.Second)
	if n := count(); n <= first {
		t.Errorf("the counter stays at %d after the restore", n)
	}
	if got := strings.TrimSpace(e.ssh("s", "cat /root/marker")); got != "kept" {
		t.Errorf("/root/marker after the restore = %q, want kept", got)
	}
	if s := e.session("s", "counter"); s.State != api.SessionRunning {
		t.Errorf("counter session after the restore = %+v; want running", s)
	}

	// A state the driver refuses (written by another QEMU version) is
	// never booted over: the error names the choice; --cold takes it.
	// Written just before the suspend, so still only in the guest's page
	// cache unless the suspend has the guest sync first.
	e.ssh("s", "echo late > /root/late")
	e.ok("vm", "stop", "s", "--suspend")
	meta := filepath.Join(e.vm("s").Dir, "state", "state.json")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var st vmm.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st.VMMVersion = "6.2.0 (an older qemu)"
	b, _ = json.Marshal(st)
	if err := os.WriteFile(meta, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("vm", "start", "s")
	if code == 0 || !strings.Contains(stderr, "6.2.0") || !strings.Contains(stderr, "vm start --cold s") {
		t.Fatalf("start over a state of another qemu: exit %d, %q; want a refusal naming the version and --cold", code, stderr)
	}
	if v := e.vm("s"); v.State != api.VMSuspended || v.StateBytes <= 0 {
		t.Fatalf("after the refused restore: %+v; want suspended with its state", v)
	}
	e.ok("vm", "start", "s", "--cold")
	if v := e.vm("s"); v.State != api.VMRunning || v.StateBytes != 0 {
		t.Fatalf("after vm start --cold: %+v; want running, no state", v)
	}
	if got := strings.TrimSpace(e.ssh("s", "cat /root/marker")); got != "kept" {
		t.Errorf("/root/marker after the cold start = %q, want kept", got)
	}
	if got := strings.TrimSpace(e.ssh("s", "cat /root/late")); got != "late" {
		t.Errorf("/root/late, written just before the suspend, after the cold start = %q; want late (the suspend syncs the guest)", got)
	}
	if out := e.ok("vm", "session", "list", "s"); strings.Contains(out, "running") {
		t.Errorf("the cold-booted vm still runs the counter:\n%s", out)
	}
}

// procRuns reports whether a process with pid exists.
func procRuns(pid int) bool {
	_, err := vmm.ProcStartTime(pid)
	return err == nil
}
