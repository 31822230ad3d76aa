package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/internal/agent"
	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// newPollWorld is a world whose daemon polls fast; mut adjusts its options
// before the daemon starts.
func newPollWorld(t *testing.T, mut func(*Options)) *world {
	t.Helper()
	w := newWorld(t)
	w.opts.Config.StatsPollInterval = 50 * time.Millisecond
	w.opts.Config.MetricsPollInterval = 50 * time.Millisecond
	if mut != nil {
		mut(&w.opts)
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

func stats(t *testing.T, d *Daemon, name string, history int) api.VMStats {
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
func waitRounds(t *testing.T, d *Daemon, name string, n int) {
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
		h := stats(t, w.d, "dev", -1).History
		return len(h) >= 3 && h[len(h)-1].CPUs > 0
	})
	st := stats(t, w.d, "dev", -1)
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
	if got := stats(t, w.d, "dev", 2).History; len(got) != 2 {
		t.Errorf("history=2 gave %d samples", len(got))
	}
	if got := stats(t, w.d, "dev", 0).History; got != nil {
		t.Errorf("history=0 gave %d samples, want none", len(got))
	}
	if st.Busy == "" && st.IdleSince == nil {
		t.Error("a running vm is neither busy nor idle")
	}
	if st.AutoStopAt != nil {
		t.Error("auto-stop time set while auto_stop_stale_after is 0")
	}

	if _, err := w.d.StopVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	st = stats(t, w.d, "dev", -1)
	if st.State != api.VMStopped || st.Current == nil || st.Busy != "" || st.IdleSince != nil {
		t.Errorf("stats of the stopped vm = %+v; want its last sample kept, no idle state", st)
	}
	if err := w.d.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.VMStats(ctx, "dev", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stats of a deleted vm: %v, want not found", err)
	}
	waitFor(t, "the deleted vm's book to go", func() bool {
		w.d.stats.mu.Lock()
		defer w.d.stats.mu.Unlock()
		return w.d.stats.vms["dev"] == nil
	})
}

func TestStatsOnDemand(t *testing.T) {
	w := newPollWorld(t, func(o *Options) { o.Config.StatsPollInterval = 0 }) // no poller
	w.create("dev")
	st := stats(t, w.d, "dev", -1)
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
	w := newPollWorld(t, func(o *Options) {
		md = &metricsDriver{Driver: o.Driver.(*vmmfake.Driver)}
		o.Driver = md
	})
	vm := w.create("dev")
	waitFor(t, "vmm metrics", func() bool { return stats(t, w.d, "dev", 0).Metrics != nil })
	m := stats(t, w.d, "dev", 0).Metrics
	if m.Error != "" || len(m.Block) != 1 || m.Block[0].Device != "rootfs" || m.Block[0].ReadBytes == 0 || m.Extra["pid"] != vm.PID {
		t.Errorf("metrics = %+v", m)
	}
}

func TestRingKeepsNewest(t *testing.T) {
	var r ring[int]
	if _, ok := r.newest(); ok || len(r.last(-1)) != 0 {
		t.Fatal("an empty ring has entries")
	}
	for i := range historyLen + 40 {
		r.push(i)
	}
	all := r.last(-1)
	if len(all) != historyLen || all[0] != 40 || all[len(all)-1] != historyLen+39 {
		t.Errorf("ring holds %d entries from %d to %d; want the newest %d", len(all), all[0], all[len(all)-1], historyLen)
	}
	if got, want := r.last(3), []int{historyLen + 37, historyLen + 38, historyLen + 39}; !cmp.Equal(got, want) {
		t.Errorf("last(3) = %v, want %v", got, want)
	}
	if n, _ := r.newest(); n != historyLen+39 {
		t.Errorf("newest = %d", n)
	}
}

func TestGuestSampleRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := &agent.Stats{
		Time: t0, Uptime: 100,
		CPU:      agent.CPUStats{Count: 2, User: 100, System: 100, Idle: 800},
		Memory:   agent.MemStats{Total: 1000, Available: 400},
		Disks:    []agent.Disk{{Device: "/dev/vda", Mount: "/", Total: 100, Free: 30, ReadBytes: 1000, WrittenBytes: 500}},
		Networks: []agent.NetIf{{Name: "lo", RxBytes: 5000}, {Name: "eth0", RxBytes: 100, TxBytes: 200}},
	}
	cur := &agent.Stats{
		Time: t0.Add(2 * time.Second), Uptime: 102, SSHConnections: 1,
		CPU:      agent.CPUStats{Count: 2, User: 150, System: 100, Idle: 950}, // 50 busy of 200
		Memory:   agent.MemStats{Total: 1000, Available: 300},
		Disks:    []agent.Disk{{Device: "/dev/vda", Mount: "/", Total: 100, Free: 20, ReadBytes: 3000, WrittenBytes: 900}},
		Networks: []agent.NetIf{{Name: "lo", RxBytes: 9000}, {Name: "eth0", RxBytes: 300, TxBytes: 600}},
	}
	var s api.StatsSample
	if !guestSample(&s, cur, prev) {
		t.Fatal("no rates from two samples of one boot")
	}
	want := api.StatsSample{
		CPUs: 2, CPUPercent: 25, MemTotal: 1000, MemUsed: 700, SSHConnections: 1,
		Disks:        []api.DiskUsage{{Device: "/dev/vda", Mount: "/", Total: 100, Used: 80}},
		DiskReadRate: 1000, DiskWriteRate: 200, NetRxRate: 100, NetTxRate: 200,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("sample (-want +got):\n%s", diff)
	}
	rebooted := *cur
	rebooted.Uptime = 3
	if guestSample(&api.StatsSample{}, &rebooted, cur) {
		t.Error("rates computed across a reboot")
	}
	if guestSample(&api.StatsSample{}, cur, nil) {
		t.Error("rates computed without a previous sample")
	}
}
