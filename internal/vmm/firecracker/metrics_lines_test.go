package firecracker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

// TestCollectMetricsLines covers what the metrics file may hold besides
// whole lines: holes (zeros) where Firecracker wrote past a truncated
// end, a line cut short, a line still being written.
func TestCollectMetricsLines(t *testing.T) {
	dir := t.TempDir()
	path, state := filepath.Join(dir, "metrics.json"), filepath.Join(dir, "metrics.state.json")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := func(rd uint64) string {
		return `{"utc_timestamp_ms":1,"vcpu":{"failures":0},"block":{"read_bytes":999},` +
			`"block_rootfs":{"read_bytes":` + strconv.FormatUint(rd, 10) + `,"read_count":1},"net_eth0":{"rx_bytes_count":10}}` + "\n"
	}
	write := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	collect := func() vmm.Metrics {
		t.Helper()
		m, err := collectMetrics(path, state)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := func(m vmm.Metrics, rd, reads, rx uint64) {
		t.Helper()
		wb := []vmm.BlockMetrics{{Device: "rootfs", ReadBytes: rd, ReadOps: reads}}
		wn := []vmm.NetMetrics{{Device: "eth0", RxBytes: rx}}
		if diff := cmp.Diff(wb, m.Block); diff != "" {
			t.Errorf("Block (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wn, m.Net); diff != "" {
			t.Errorf("Net (-want +got):\n%s", diff)
		}
	}

	// A hole, a whole line, a line cut short, half of the next line.
	f.Seek(4096, 0)
	write(line(100))
	write(`{"block_rootfs":{"read_by` + "\n")
	next := line(5)
	write(next[:20])
	m := collect()
	want(m, 100, 1, 10)
	if _, ok := m.Extra["vcpu"]; !ok || m.Extra["block"] != nil {
		t.Errorf("Extra = %v, want vcpu and no block aggregate", m.Extra)
	}

	// The rest of the line arrives: counted once, the half included.
	write(next[20:])
	want(collect(), 105, 2, 20)
	want(collect(), 105, 2, 20) // nothing new

	// Lost totals start again from zero without counting old lines twice.
	os.WriteFile(state, []byte("{not json"), 0o600)
	write(line(7))
	want(collect(), 7, 1, 10)
}

// TestCollectMetricsBoundsLines: the metrics file is written by a
// process the guest may control. A line longer than any Firecracker
// writes is skipped unread, even while it has no end yet, and the lines
// after it still count.
func TestCollectMetricsBoundsLines(t *testing.T) {
	dir := t.TempDir()
	path, state := filepath.Join(dir, "metrics.json"), filepath.Join(dir, "metrics.state.json")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := `{"block_rootfs":{"read_bytes":3}}` + "\n"
	// A long line with its end, and one still without (2 MiB each, above
	// maxMetricsLine).
	f.WriteString(strings.Repeat("x", 2<<20) + "\n" + line + strings.Repeat("y", 2<<20))
	if _, err := collectMetrics(path, state); err != nil {
		t.Fatal(err)
	}
	f.WriteString(line)
	m, err := collectMetrics(path, state)
	if err != nil {
		t.Fatal(err)
	}
	want := []vmm.BlockMetrics{{Device: "rootfs", ReadBytes: 6}}
	if diff := cmp.Diff(want, m.Block); diff != "" {
		t.Errorf("Block (-want +got):\n%s", diff)
	}
}
