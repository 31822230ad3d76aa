//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/client"
)

// TestBootFigures measures create -> agent ready and create -> SSH for
// five VMs of each fixture image and logs the medians. It asserts nothing
// about time; run it with BANGER_E2E_FIGURES=1.
func TestBootFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure boot times")
	}
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.registerDebian("deb")
	cl := client.New(filepath.Join(e.rt, "banger", "bangerd.sock"))
	for _, img := range []string{"bb", "deb"} {
		var agent, ssh []time.Duration
		for i := 0; i < 5; i++ {
			name := fmt.Sprintf("%s%d", img, i)
			t0 := time.Now()
			var tAgent time.Time
			_, err := cl.CreateVM(context.Background(), api.CreateVMRequest{Name: name, Image: img, MemoryMiB: 512, DiskBytes: 1 << 30}, func(ev api.Event) {
				if ev.Step == "ssh" && tAgent.IsZero() {
					tAgent = time.Now()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			ssh = append(ssh, time.Since(t0))
			agent = append(agent, tAgent.Sub(t0))
			if i == 4 {
				// The agent's resident memory once the guest has settled.
				// Both fixtures boot it as PID 1 (neither has an init), which
				// forks the process that serves the host; report each.
				time.Sleep(5 * time.Second)
				rss := e.ok("vm", "ssh", name, "--", `for p in $(pidof banger-vsock-agent); do echo "pid $p $(grep VmRSS /proc/$p/status)"; done`)
				t.Logf("image %s: agent %s", img, strings.Join(strings.Fields(rss), " "))
			}
			e.ok("vm", "delete", "--force", name)
		}
		t.Logf("image %s: create->agent median %s %v; create->ssh median %s %v", img, median(agent), agent, median(ssh), ssh)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(10 * time.Millisecond)
}

// TestPollerOverheadFigures measures bangerd with ten running guests at
// the default poll intervals: its CPU share of one core and its RSS over
// a minute, against the same minute with the guests stopped. It asserts
// nothing about either; run it with BANGER_E2E_FIGURES=1.
func TestPollerOverheadFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure the daemon's polling overhead")
	}
	e := newEnv(t, "")
	// Default intervals and log level; QEMU, and taps for ten VMs.
	cfg := filepath.Join(e.home, "config", "banger", "config.toml")
	if err := os.WriteFile(cfg, []byte("vmm = \"qemu\"\ntap_pool_size = 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	e.registerBusybox("bb")
	cl := client.New(filepath.Join(e.rt, "banger", "bangerd.sock"))
	pid := daemonPID(e.rt)
	window := time.Minute
	idleCPU, idleRSS := sampleProc(t, pid, window)
	const n = 10
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		if _, err := cl.CreateVM(context.Background(), api.CreateVMRequest{Name: name, Image: "bb", MemoryMiB: 128, DiskBytes: 256 << 20}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Let every VM's first stats round and the first metrics round pass.
	time.Sleep(15 * time.Second)
	busyCPU, busyRSS := sampleProc(t, pid, window)
	st, err := cl.VMStats(context.Background(), "p0", -1)
	if err != nil || st.Current == nil {
		t.Fatalf("vm p0 has no stats samples (%v): the pollers did not run", err)
	}
	t.Logf("bangerd, no VMs: cpu %.3f%% of a core over %s, rss %.1f MiB", idleCPU, window, idleRSS)
	t.Logf("bangerd, %d running VMs, default intervals: cpu %.3f%% of a core over %s, rss %.1f MiB (%d stats samples of p0, metrics %v)", n, busyCPU, window, busyRSS, len(st.History), st.Metrics != nil)
	for i := range n {
		e.ok("vm", "delete", "--force", fmt.Sprintf("p%d", i))
	}
}

// sampleProc returns pid's CPU use over d, as a percentage of one core,
// and its resident memory at the end, in MiB.
func sampleProc(t *testing.T, pid int, d time.Duration) (float64, float64) {
	t.Helper()
	ticks := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command name, which ends at the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		var ut, st float64
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
		return ut + st
	}
	t0, c0 := time.Now(), ticks()
	time.Sleep(d)
	cpu := (ticks() - c0) / 100 / time.Since(t0).Seconds() * 100 // USER_HZ is 100 on Linux
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var rss float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fmt.Sscan(strings.TrimPrefix(line, "VmRSS:"), &rss)
		}
	}
	return cpu, rss / 1024
}
