package daemon_test

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/vmm/vmmfake"
)

// TestPollerOverhead measures what the pollers cost with ten running VMs
// on the fake driver: CPU time of this process over a window (getrusage)
// and its memory. The fake guests' agents run in this process too, so
// their side of each stats call is counted: the figures are an upper
// bound for the daemon. It is a measurement, not a check; run it with
//
//	BANGER_MEASURE=1 go test ./internal/daemon -run TestPollerOverhead -v
//
// BANGER_MEASURE_WINDOW (default 60s) sets the window at default intervals.
func TestPollerOverhead(t *testing.T) {
	if os.Getenv("BANGER_MEASURE") == "" {
		t.Skip("a measurement; set BANGER_MEASURE=1 to run it")
	}
	window := 60 * time.Second
	if s := os.Getenv("BANGER_MEASURE_WINDOW"); s != "" {
		window, _ = time.ParseDuration(s)
	}
	def := config.Default()
	fast := 100 * time.Millisecond
	for _, tc := range []struct {
		name           string
		stats, metrics time.Duration
		window         time.Duration
	}{
		{"pollers off", 0, 0, window}, // the baseline: VM exit watchers, agent connections
		{"default intervals", def.StatsPollInterval, def.MetricsPollInterval, window},
		{"100ms intervals", fast, fast, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var md *metricsDriver
			w := newPollWorld(t, func(o *daemon.Options) {
				o.Config.StatsPollInterval, o.Config.MetricsPollInterval = tc.stats, tc.metrics
				o.Config.AutoStopStaleAfter = 2 * time.Hour // judged, never due
				md = &metricsDriver{Driver: o.Driver.(*vmmfake.Driver)}
				o.Driver = md
			})
			for i := range 10 {
				w.create(fmt.Sprintf("vm%d", i))
			}
			runtime.GC()
			cpu0, t0 := cpuTime(), time.Now()
			time.Sleep(tc.window)
			cpu, wall := cpuTime()-cpu0, time.Since(t0)
			per := cmp.Or(tc.stats, time.Second)
			rounds := float64(wall) / float64(per)
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			t.Logf("10 VMs, stats every %s, metrics every %s, over %s: cpu %s = %.3f%% of a core (%.2f ms per %s); heap in use %.1f MiB; process RSS %.1f MiB; metrics calls %d",
				tc.stats, tc.metrics, wall.Round(time.Second), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(),
				float64(cpu.Milliseconds())/rounds, per, float64(ms.HeapInuse)/(1<<20), float64(rssKiB())/1024, md.calls.Load())
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKiB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
