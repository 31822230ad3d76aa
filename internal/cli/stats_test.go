package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"banger/api"
)

func TestAutoStopLine(t *testing.T) {
	now := time.Unix(10000, 0)
	idle := now.Add(-5 * time.Minute)
	at := now.Add(55 * time.Minute)
	tests := []struct {
		name string
		st   api.VMStats
		want string
	}{
		{"stopped", api.VMStats{State: api.VMStopped}, "-"},
		{"paused", api.VMStats{State: api.VMPaused}, "exempt while paused"},
		{"busy", api.VMStats{State: api.VMRunning, Busy: "1 ssh connection"}, "in use (1 ssh connection)"},
		{"idle", api.VMStats{State: api.VMRunning, IdleSince: &idle, AutoStopAt: &at}, "idle for 5m0s, stops in 55m0s"},
		{"kept", api.VMStats{State: api.VMRunning, IdleSince: &idle, KeepAlive: true}, "idle for 5m0s, kept alive"},
	}
	for _, tt := range tests {
		if got := autoStopLine(tt.st, now); got != tt.want {
			t.Errorf("%s: autoStopLine = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestStatsRows(t *testing.T) {
	now := time.Now()
	st := api.VMStats{
		Name: "dev", State: api.VMRunning, IntervalSeconds: 10,
		Current: &api.StatsSample{
			Time: now, CPUs: 2, CPUPercent: 12.5, MemTotal: 1 << 30, MemUsed: 256 << 20, SSHConnections: 1,
			Disks:  []api.DiskUsage{{Device: "/dev/vdb", Mount: "/root", Total: 8 << 30, Used: 1 << 30}},
			VMMRSS: 300 << 20, VMMCPUPercent: 2,
		},
		Metrics: &api.VMMMetrics{Time: now, Block: []api.BlockMetrics{{Device: "rootfs", ReadBytes: 4096, ReadOps: 1}}},
	}
	var out bytes.Buffer
	table(&out, statsRows(st, now))
	for _, want := range []string{"12.5% of 2 vCPUs", "256.0 MiB of 1.0 GiB (25%)", "disk /root:", "1 connection", "rss 300.0 MiB", "vmm rootfs:", "every 10s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stats output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	table(&out, statsRows(api.VMStats{Name: "new", State: api.VMRunning, IntervalSeconds: 10}, now))
	if !strings.Contains(out.String(), "never") {
		t.Errorf("stats without a sample:\n%s", out.String())
	}
}

func TestSampleRowsLineUp(t *testing.T) {
	var out bytes.Buffer
	s := api.StatsSample{Time: time.Now(), CPUPercent: 3, MemUsed: 1 << 20, VMMRSS: 1 << 20}
	writeRows(&out, append([][]string{sampleHeader}, sampleRows([]api.StatsSample{s})...))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "VMM RSS") != strings.LastIndex(lines[1], "1.0 MiB") {
		t.Errorf("watch rows do not line up with the header:\n%s", out.String())
	}
}
