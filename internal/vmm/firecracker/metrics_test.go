package firecracker_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	fc "banger/internal/vmm/firecracker/fcstandin"
)

// wantMetrics is what the stand-in's counters add up to after flushes
// flushes of newSpec's VM (drives rootfs and work, interface eth0).
func wantMetrics(flushes uint64) ([]vmm.BlockMetrics, []vmm.NetMetrics) {
	drive := func(id string, n uint64) vmm.BlockMetrics {
		n *= flushes
		return vmm.BlockMetrics{Device: id,
			ReadBytes: n * fc.ActivityReadBytes, WriteBytes: n * fc.ActivityWriteBytes,
			ReadOps: n * fc.ActivityReads, WriteOps: n * fc.ActivityWrites, FlushOps: n * fc.ActivityFlushes}
	}
	return []vmm.BlockMetrics{drive("rootfs", 1), drive("work", 2)},
		[]vmm.NetMetrics{{Device: "eth0",
			RxBytes: flushes * fc.ActivityRxBytes, TxBytes: flushes * fc.ActivityTxBytes,
			RxPackets: flushes * fc.ActivityRxPackets, TxPackets: flushes * fc.ActivityTxPackets}}
}

func checkMetrics(t *testing.T, what string, got vmm.Metrics, flushes uint64) {
	t.Helper()
	block, net := wantMetrics(flushes)
	if diff := cmp.Diff(block, got.Block); diff != "" {
		t.Errorf("%s: Block (-want +got):\n%s", what, diff)
	}
	if diff := cmp.Diff(net, got.Net); diff != "" {
		t.Errorf("%s: Net (-want +got):\n%s", what, diff)
	}
}

// TestMetrics: Firecracker's block and net counters are deltas since its
// previous flush; the driver adds up every line, its own flushes and
// Firecracker's periodic ones alike, into counters since boot that
// survive a daemon restart.
func TestMetrics(t *testing.T) {
	d := standIn(t, fc.Options{})
	spec := newSpec(t)
	h := create(t, d, spec)
	ctx := context.Background()
	if _, err := d.Metrics(ctx, h); err == nil {
		t.Error("Metrics before Start succeeded; Firecracker refuses FlushMetrics before boot")
	}
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	var mr vmm.MetricsReader = d
	m, err := mr.Metrics(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, "first call", m, 1)
	for _, group := range []string{"utc_timestamp_ms", "vcpu", "vmm", "api_server"} {
		if _, ok := m.Extra[group]; !ok {
			t.Errorf("Extra has no %q: %v", group, m.Extra)
		}
	}
	for _, group := range []string{"block", "net", "block_rootfs", "net_eth0"} {
		if _, ok := m.Extra[group]; ok {
			t.Errorf("Extra holds %q, which Block and Net carry", group)
		}
	}

	// Two periodic flushes between polls, then a daemon restart: a new
	// driver goes on from the same totals.
	c := firecracker.NewClient(h.Sockets["api"])
	for range 2 {
		if err := c.Action(ctx, firecracker.ActionFlushMetrics); err != nil {
			t.Fatal(err)
		}
	}
	d2 := firecracker.New(firecracker.Options{Binary: "/nonexistent/firecracker"})
	m, err = d2.Metrics(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, "after a restart", m, 4)
	if _, err := vmm.ReadMetrics(ctx, d2, h); err != nil {
		t.Errorf("vmm.ReadMetrics: %v", err)
	}
}

// TestMetricsFileStaysSmall: counted lines are punched out of the
// metrics file, so polling for a long time takes no disk space, while
// lines written since are still counted.
func TestMetricsFileStaysSmall(t *testing.T) {
	d := standIn(t, fc.Options{})
	spec := newSpec(t)
	h := create(t, d, spec)
	ctx := context.Background()
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	const polls = 300
	var m vmm.Metrics
	var err error
	for range polls {
		if m, err = d.Metrics(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	checkMetrics(t, "after many polls", m, polls)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(spec.RuntimeDir, "metrics.json"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size < 100<<10 {
		t.Fatalf("%d flushes wrote only %d bytes; the test needs more to tell", polls, st.Size)
	}
	if used := st.Blocks * 512; used > 16<<10 {
		t.Errorf("metrics.json uses %d bytes of disk for %d bytes written, want at most 16 KiB", used, st.Size)
	}
	// The totals go with the VM's files.
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spec.RuntimeDir, "metrics.state.json")); !os.IsNotExist(err) {
		t.Errorf("metrics totals left after Kill: %v", err)
	}
}
