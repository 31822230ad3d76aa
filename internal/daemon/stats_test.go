package daemon_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/daemon"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// newPollWorld is a world whose daemon polls fast; mut adjusts its options
// before the daemon starts.
func newPollWorld(t *testing.T, mut func(*daemon.Options)) *world {
	t.Helper()
	w := newWorld(t)
	w.Opts.Config.StatsPollInterval = 50 * time.Millisecond
	w.Opts.Config.MetricsPollInterval = 50 * time.Millisecond
	if mut != nil {
		mut(&w.Opts)
	}
	w.restart()
	return w
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stats(t *testing.T, d *daemon.Daemon, name string, history int) api.VMStats {
	t.Helper()
	st, err := d.VMStats(context.Background(), name, history)
	if err != nil {
		t.Fatalf("VMStats(%s): %v", name, err)
	}
	return st
}

// waitRounds waits until name has n samples newer than now. Poll rounds
// run one after another, so the round before the newest has then finished
// entirely (auto-stop judgements included).
func waitRounds(t *testing.T, d *daemon.Daemon, name string, n int) {
	t.Helper()
	since := time.Now()
	waitFor(t, "poll rounds", func() bool {
		count := 0
		for _, s := range stats(t, d, name, -1).History {
			if s.Time.After(since) {
				count++
			}
		}
		return count >= n
	})
}

func TestStatsPolling(t *testing.T) {
	w := newPollWorld(t, nil)
	ctx := context.Background()
	w.create("dev")
	waitFor(t, "three samples with rates", func() bool {
		h := stats(t, w.D, "dev", -1).History
		return len(h) >= 3 && h[len(h)-1].CPUs > 0
	})
	st := stats(t, w.D, "dev", -1)
	cur := st.Current
	if cur == nil || cur.GuestError != "" || cur.VMMError != "" {
		t.Fatalf("current sample = %+v, want guest and vmm parts", cur)
	}
	// The fake VMM is a tiny sleep, whose RSS the kernel's approximate
	// counters may still show as 0: the e2e test checks it on QEMU.
	if cur.MemTotal == 0 || cur.MemUsed == 0 || cur.MemUsed > cur.MemTotal || cur.Procs == 0 {
		t.Errorf("current sample = %+v; want memory and procs", cur)
	}
	if cur.CPUPercent < 0 || cur.CPUPercent > 100 {
		t.Errorf("cpu = %v%%, want 0 to 100", cur.CPUPercent)
	}
	for i := 1; i < len(st.History); i++ {
		if !st.History[i].Time.After(st.History[i-1].Time) {
			t.Fatalf("history is not oldest first at %d: %v then %v", i, st.History[i-1].Time, st.History[i].Time)
		}
	}
	if last := st.History[len(st.History)-1]; !cmp.Equal(last, *cur) {
		t.Errorf("history does not end with the current sample")
	}
	if got := stats(t, w.D, "dev", 2).History; len(got) != 2 {
		t.Errorf("history=2 gave %d samples", len(got))
	}
	if got := stats(t, w.D, "dev", 0).History; got != nil {
		t.Errorf("history=0 gave %d samples, want none", len(got))
	}
	if st.Busy == "" && st.IdleSince == nil {
		t.Error("a running vm is neither busy nor idle")
	}
	if st.AutoStopAt != nil {
		t.Error("auto-stop time set while auto_stop_stale_after is 0")
	}

	if _, err := w.D.StopVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	st = stats(t, w.D, "dev", -1)
	if st.State != api.VMStopped || st.Current == nil || st.Busy != "" || st.IdleSince != nil {
		t.Errorf("stats of the stopped vm = %+v; want its last sample kept, no idle state", st)
	}
	if err := w.D.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.VMStats(ctx, "dev", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stats of a deleted vm: %v, want not found", err)
	}
	waitFor(t, "the deleted vm's book to go", func() bool {

		return !w.D.Tracked("dev")
	})
}

func TestStatsOnDemand(t *testing.T) {
	w := newPollWorld(t, func(o *daemon.Options) { o.Config.StatsPollInterval = 0 }) // no poller
	w.create("dev")
	st := stats(t, w.D, "dev", -1)
	if st.Current == nil || st.Current.MemTotal == 0 || len(st.History) != 1 {
		t.Errorf("stats of a vm never polled = %+v; want one sample taken on demand", st)
	}
}

// metricsDriver is the fake driver with VMM metrics.
type metricsDriver struct {
	*vmmfake.Driver
	calls atomic.Int32
}

func (m *metricsDriver) Metrics(ctx context.Context, h *vmm.Handle) (vmm.Metrics, error) {
	n := m.calls.Add(1)
	return vmm.Metrics{
		Block: []vmm.BlockMetrics{{Device: "rootfs", ReadBytes: uint64(n) * 4096, ReadOps: uint64(n)}},
		Extra: map[string]any{"pid": h.PID},
	}, nil
}

func TestMetricsPolling(t *testing.T) {
	var md *metricsDriver
	w := newPollWorld(t, func(o *daemon.Options) {
		md = &metricsDriver{Driver: o.Driver.(*vmmfake.Driver)}
		o.Driver = md
	})
	vm := w.create("dev")
	waitFor(t, "vmm metrics", func() bool { return stats(t, w.D, "dev", 0).Metrics != nil })
	m := stats(t, w.D, "dev", 0).Metrics
	if m.Error != "" || len(m.Block) != 1 || m.Block[0].Device != "rootfs" || m.Block[0].ReadBytes == 0 || m.Extra["pid"] != vm.PID {
		t.Errorf("metrics = %+v", m)
	}
}
