//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/testutil"
	"banger/internal/testutil/fixture"
)

const (
	// envReuseBin names the binaries a run of this test binary by one of
	// its tests uses instead of building its own.
	envReuseBin = "BANGER_E2E_BIN"
	// envWatchdogHelper turns TestWatchdogHelper on; it names the file
	// the helper describes its env in once a VM runs.
	envWatchdogHelper = "BANGER_E2E_WATCHDOG_READY"
)

// helperEnv is what TestWatchdogHelper made, for TestWatchdog to check.
type helperEnv struct {
	NS     string `json:"ns"`
	RT     string `json:"rt"`
	Home   string `json:"home"`
	Daemon int    `json:"daemon"`
	QEMU   int    `json:"qemu"`
}

// TestWatchdog runs this test binary's TestWatchdogHelper, which starts
// a daemon and a VM and then hangs, and ends it as go test's -timeout
// does (the testing package panics, no t.Cleanup runs) and as a Ctrl-C
// does. Either way the watchdog must leave no bangerd, no QEMU, no
// namespace and no runtime directory behind, and say what it cleaned.
func TestWatchdog(t *testing.T) {
	testutil.RequiresRoot(t)
	fixture.Require(t, "qemu-system-x86_64", "ip", "ssh")
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		interrupt bool
	}{
		{"timeout", 30 * time.Second, false},
		{"interrupt", 10 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready.json")
			cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogHelper$", "-test.v", "-test.timeout="+tc.timeout.String())
			cmd.Env = append(os.Environ(), envWatchdogHelper+"="+ready, envReuseBin+"="+binDir)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			// A session of its own: a Ctrl-C at this test is not the helper's.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			t0 := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var waitErr error
			var done bool
			defer func() {
				if !done {
					cmd.Process.Kill()
					<-exited
				}
			}()

			var h helperEnv
			for h.QEMU == 0 {
				select {
				case waitErr = <-exited:
					done = true
					t.Fatalf("the helper ended before its vm ran (%v):\n%s", waitErr, out.String())
				case <-time.After(200 * time.Millisecond):
				}
				if b, err := os.ReadFile(ready); err == nil {
					json.Unmarshal(b, &h)
				}
			}
			t.Logf("helper's daemon %d and qemu %d running after %s", h.Daemon, h.QEMU, time.Since(t0).Round(100*time.Millisecond))
			// Should the watchdog fail, this test still cleans up.
			t.Cleanup(func() {
				left := &watched{test: t.Name(), ns: h.NS, dirs: []string{h.RT, h.Home}}
				for _, line := range left.clean() {
					t.Logf("left by the helper: %s", line)
				}
				os.RemoveAll(filepath.Dir(h.Home))
			})
			if tc.interrupt {
				cmd.Process.Signal(syscall.SIGINT)
			}
			select {
			case waitErr = <-exited:
				done = true
			case <-time.After(tc.timeout + time.Minute):
				t.Fatalf("the helper did not end")
			}
			t.Logf("helper ended after %s: %v", time.Since(t0).Round(100*time.Millisecond), waitErr)
			log := out.String()

			st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if tc.interrupt && (!st.Signaled() || st.Signal() != syscall.SIGINT) {
				t.Errorf("the helper ended with %v, want death by SIGINT", waitErr)
			}
			if !tc.interrupt && !strings.Contains(log, "panic: test timed out after "+tc.timeout.String()) {
				t.Errorf("the helper did not time out:\n%s", firstLines(log, 20))
			}
			var missing []string
			for _, want := range []string{"e2e watchdog: ", "killed ", "removed network namespace " + h.NS, "removed " + h.RT} {
				if !strings.Contains(log, want) {
					missing = append(missing, want)
				}
			}
			if len(missing) > 0 {
				t.Errorf("the watchdog's report lacks %q; the helper's output:\n%s", missing, firstLines(log, 20))
			}
			for name, pid := range map[string]int{"bangerd": h.Daemon, "qemu": h.QEMU} {
				if running(pid) {
					t.Errorf("%s (pid %d) still running", name, pid)
				}
			}
			for _, p := range processes() {
				if p.names([]string{h.RT, h.Home}) {
					t.Errorf("process %d (%s) of the helper's env still running", p.pid, p.comm)
				}
			}
			for _, p := range []string{filepath.Join(netnsDir, h.NS), h.RT} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s left behind", p)
				}
			}
		})
	}
}

// TestWatchdogHelper is run by TestWatchdog only: it starts a daemon and
// a busybox VM, describes them in the file envWatchdogHelper names, and
// waits to be ended by the test timeout or a signal.
func TestWatchdogHelper(t *testing.T) {
	ready := os.Getenv(envWatchdogHelper)
	if ready == "" {
		t.Skip("run by TestWatchdog, in a test binary of its own")
	}
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	create := e.asUserNS(filepath.Join(binDir, "banger"), "vm", "create", "--name", "w", "--image", "bb")
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	// The watchdog kills it with the env (it runs in the namespace); the
	// test never returns, so there is no Wait.
	fi, err := os.Stat(filepath.Join(netnsDir, e.ns.Name))
	if err != nil {
		t.Fatal(err)
	}
	ns := fi.Sys().(*syscall.Stat_t).Ino
	h := helperEnv{NS: e.ns.Name, RT: e.rt, Home: e.home, Daemon: daemonPID(e.rt)}
	// The daemonized QEMU, from its pid file in the VM's runtime dir,
	// running in the env's namespace.
	for h.QEMU == 0 {
		filepath.WalkDir(e.rt, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.Name() != "qemu.pid" {
				return nil
			}
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if fi, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); pid > 0 && err == nil && fi.Sys().(*syscall.Stat_t).Ino == ns && running(pid) {
				h.QEMU = pid
			}
			return nil
		})
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.Marshal(h)
	if err := os.WriteFile(ready+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ready+".tmp", ready); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
}

// firstLines is s up to its nth line: enough of a timed-out test's
// output to see why, without every goroutine's stack.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[:min(n, len(lines))], "")
}
