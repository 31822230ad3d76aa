package monitor

import (
	"context"
	"sync"
	"time"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/store"
	"banger/internal/vmm"
)

// The pollers: every stats_poll_interval each running VM is sampled (the
// guest through its agent, the VMM process from /proc) and the sample is
// judged for auto-stop (autostop.go); every metrics_poll_interval the VMM's
// own metrics are read when the driver offers them. Samples live in a
// bounded ring per VM: the API, 'vm stats', 'vm show' and the web UI read
// them from there. A third poller bounds the VMs' logs (logtrim.go).

// historyLen bounds each VM's ring: an hour at the default interval.
const historyLen = 360

// sampleTimeout bounds the calls of one sample, so a wedged guest cannot
// hold up the others for long.
const sampleTimeout = 5 * time.Second

// startPollers runs the pollers in the daemon's lifetime; Close waits for
// them. A zero interval disables a poller.
func (m *Monitor) startPollers() {
	if iv := m.cfg.StatsPollInterval; iv > 0 {
		m.pollers.Go(func() { m.every(iv, m.pollStats) })
	}
	m.pollers.Go(func() { m.every(logTrimInterval, m.trimLogs) })
	if _, ok := m.driver.(vmm.MetricsReader); ok && m.cfg.MetricsPollInterval > 0 {
		m.pollers.Go(func() { m.every(m.cfg.MetricsPollInterval, m.pollMetrics) })
	}
}

func (m *Monitor) every(iv time.Duration, fn func(context.Context)) {
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-m.life.Done():
			return
		case <-t.C:
			fn(m.life)
		}
	}
}

// eachRunning calls fn concurrently for every running VM and waits; it
// tells the book which VMs exist and which are not running.
func (m *Monitor) eachRunning(ctx context.Context, fn func(store.VM, *vmm.Handle)) {
	rows, err := m.vms.Rows(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("listing vms to poll", "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	exist := map[string]bool{}
	for _, r := range rows {
		exist[r.Name] = true
		h := r.Handle
		if r.State != api.VMRunning || h == nil {
			m.stats.notRunning(r.Name)
			continue
		}
		wg.Go(func() { fn(r, h) })
	}
	wg.Wait()
	m.stats.keepOnly(exist)
}

func (m *Monitor) pollStats(ctx context.Context) {
	m.eachRunning(ctx, func(r store.VM, h *vmm.Handle) { m.sampleVM(ctx, r, h) })
}

func (m *Monitor) pollMetrics(ctx context.Context) {
	m.eachRunning(ctx, func(r store.VM, h *vmm.Handle) {
		cctx, cancel := context.WithTimeout(ctx, sampleTimeout)
		defer cancel()
		mt, err := vmm.ReadMetrics(cctx, m.driver, h)
		m.stats.setMetrics(r.Name, toAPIMetrics(time.Now(), mt, err))
	})
}

// reading is what one sample gathered, before it is turned into rates.
type reading struct {
	at          time.Time
	guest       *agentproto.Stats
	guestErr    error
	sessions    []agentproto.Session
	sessionsErr error
	proc        *vmm.ProcStats
	procErr     error
}

// sampleVM reads a running VM, records the sample and judges it for
// auto-stop.
func (m *Monitor) sampleVM(ctx context.Context, r store.VM, h *vmm.Handle) {
	rd := m.read(ctx, r.Name, h)
	if s, rated, ok := m.stats.record(r.Name, h.PID, rd); ok {
		m.judge(ctx, r, rd, s, rated)
	}
}

func (m *Monitor) read(ctx context.Context, name string, h *vmm.Handle) reading {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	rd := reading{at: time.Now()}
	if ps, err := vmm.ProcessStats(h); err != nil {
		rd.procErr = err
	} else {
		rd.proc = &ps
	}
	cl, err := m.vms.Agent(ctx, name)
	if err == nil {
		var gs agentproto.Stats
		if gs, err = cl.Stats(ctx); err == nil {
			rd.guest = &gs
			rd.sessions, rd.sessionsErr = cl.Sessions(ctx)
		}
	}
	rd.guestErr = err
	return rd
}

// VMStats returns a VM's newest sample with up to history earlier ones
// (all of them when history < 0), its VMM metrics and its auto-stop state.
// A running VM not sampled yet is sampled now.
func (m *Monitor) VMStats(ctx context.Context, name string, history int) (api.VMStats, error) {
	row, err := m.vms.Row(ctx, name)
	if err != nil {
		return api.VMStats{}, err
	}
	h := row.Handle
	running := row.State == api.VMRunning && h != nil
	if running && !m.stats.sampled(name, h.PID) {
		m.sampleVM(ctx, row, h)
	}
	out := api.VMStats{
		Name: row.Name, State: row.State, KeepAlive: row.KeepAlive,
		IntervalSeconds: m.cfg.StatsPollInterval.Seconds(),
	}
	m.stats.view(name, history, &out)
	if !running {
		out.Busy, out.IdleSince = "", nil
	}
	if after := m.cfg.AutoStopStaleAfter; after > 0 && !row.KeepAlive && out.IdleSince != nil {
		at := out.IdleSince.Add(after)
		out.AutoStopAt = &at
	}
	return out, nil
}

func toAPIMetrics(at time.Time, m vmm.Metrics, err error) *api.VMMMetrics {
	out := &api.VMMMetrics{Time: at, Extra: m.Extra}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, b := range m.Block {
		out.Block = append(out.Block, api.BlockMetrics{
			Device: b.Device, ReadBytes: b.ReadBytes, WriteBytes: b.WriteBytes,
			ReadOps: b.ReadOps, WriteOps: b.WriteOps, FlushOps: b.FlushOps,
		})
	}
	for _, n := range m.Net {
		out.Net = append(out.Net, api.NetMetrics{
			Device: n.Device, RxBytes: n.RxBytes, TxBytes: n.TxBytes, RxPackets: n.RxPackets, TxPackets: n.TxPackets,
		})
	}
	return out
}
