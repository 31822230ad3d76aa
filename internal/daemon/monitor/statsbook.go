package monitor

import (
	"sync"
	"time"

	"banger/api"
	"banger/internal/agentproto"
)

// statsBook keeps, per VM, a bounded history of samples, the previous
// counters rates are computed against, the VMM metrics and the idle clock.
type statsBook struct {
	mu  sync.Mutex
	vms map[string]*vmBook
}

type vmBook struct {
	history ring[api.StatsSample]
	metrics *api.VMMMetrics

	pid    int               // the VMM process the counters below belong to
	guest  *agentproto.Stats // previous guest counters
	proc   procMark          // previous VMM CPU time
	rated  bool              // the newest sample has rates
	fresh  bool              // sampled since pid changed
	busy   string
	idleAt time.Time // start of the current idle stretch; zero while busy
	// stopping is set while auto-stop is stopping the VM, so it is asked once.
	stopping bool
}

// procMark is a VMM process's CPU time (seconds) at a moment.
type procMark struct {
	at  time.Time
	cpu float64
}

func newStatsBook() *statsBook { return &statsBook{vms: map[string]*vmBook{}} }

// get returns name's book, creating it; callers hold mu.
func (b *statsBook) get(name string) *vmBook {
	vb := b.vms[name]
	if vb == nil {
		vb = &vmBook{}
		b.vms[name] = vb
	}
	return vb
}

// record turns a reading into a sample with rates against the previous
// one and appends it; it reports whether the sample has rates, and false
// for ok when a newer reading (an on-demand sample racing the poller) was
// recorded first, so history stays in order.
func (b *statsBook) record(name string, pid int, rd reading) (s api.StatsSample, rated, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	vb := b.get(name)
	if vb.pid != pid {
		*vb = vmBook{history: vb.history, metrics: vb.metrics, pid: pid}
	}
	if last, ok := vb.history.newest(); ok && !rd.at.After(last.Time) {
		return last, false, false
	}
	s = api.StatsSample{Time: rd.at}
	vb.rated = false
	switch {
	case rd.guest != nil:
		vb.rated = guestSample(&s, rd.guest, vb.guest)
		vb.guest = rd.guest
		sessionCounts(&s, rd.sessions)
	case rd.guestErr != nil:
		s.GuestError = rd.guestErr.Error()
	}
	if rd.proc != nil {
		s.VMMCPUSeconds, s.VMMRSS = rd.proc.CPUTime.Seconds(), rd.proc.RSS
		if p := vb.proc; !p.at.IsZero() && rd.at.After(p.at) && s.VMMCPUSeconds >= p.cpu {
			s.VMMCPUPercent = 100 * (s.VMMCPUSeconds - p.cpu) / rd.at.Sub(p.at).Seconds()
		}
		vb.proc = procMark{at: rd.at, cpu: s.VMMCPUSeconds}
	} else if rd.procErr != nil {
		s.VMMError = rd.procErr.Error()
	}
	vb.history.push(s)
	vb.fresh = true
	return s, vb.rated, true
}

// guestSample fills s from the guest's counters; rates need prev from the
// same boot, and it reports whether they could be computed.
func guestSample(s *api.StatsSample, cur, prev *agentproto.Stats) bool {
	s.CPUs, s.Load, s.Procs = cur.CPU.Count, cur.Load, cur.Procs
	s.MemTotal = cur.Memory.Total
	if cur.Memory.Available <= cur.Memory.Total {
		s.MemUsed = cur.Memory.Total - cur.Memory.Available
	}
	s.SSHConnections = cur.SSHConnections
	for _, dk := range cur.Disks {
		s.Disks = append(s.Disks, api.DiskUsage{Device: dk.Device, Mount: dk.Mount, Total: dk.Total, Used: dk.Total - min(dk.Free, dk.Total)})
	}
	if prev == nil || cur.Uptime < prev.Uptime { // none yet, or the guest rebooted
		return false
	}
	dt := cur.Time.Sub(prev.Time).Seconds()
	busy, total := cpuTicks(cur.CPU)
	pbusy, ptotal := cpuTicks(prev.CPU)
	if dt <= 0 || total <= ptotal {
		return false
	}
	s.CPUPercent = 100 * float64(delta(busy, pbusy)) / float64(total-ptotal)
	rd, wr := diskBytes(cur)
	prd, pwr := diskBytes(prev)
	rx, tx := netBytes(cur)
	prx, ptx := netBytes(prev)
	s.DiskReadRate, s.DiskWriteRate = float64(delta(rd, prd))/dt, float64(delta(wr, pwr))/dt
	s.NetRxRate, s.NetTxRate = float64(delta(rx, prx))/dt, float64(delta(tx, ptx))/dt
	return true
}

func cpuTicks(c agentproto.CPUStats) (busy, total uint64) {
	idle := c.Idle + c.IOWait
	total = c.User + c.Nice + c.System + idle + c.IRQ + c.SoftIRQ + c.Steal
	return total - idle, total
}

func diskBytes(s *agentproto.Stats) (read, written uint64) {
	for _, d := range s.Disks {
		read += d.ReadBytes
		written += d.WrittenBytes
	}
	return read, written
}

func netBytes(s *agentproto.Stats) (rx, tx uint64) {
	for _, n := range s.Networks {
		if n.Name != "lo" {
			rx += n.RxBytes
			tx += n.TxBytes
		}
	}
	return rx, tx
}

// delta is cur-prev, or 0 when a counter went backwards (a disk or
// interface went away).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return 0
	}
	return cur - prev
}

func sessionCounts(s *api.StatsSample, ss []agentproto.Session) {
	for _, x := range ss {
		if x.State == agentproto.SessionRunning {
			s.Sessions++
		}
		if x.Attached {
			s.AttachedSessions++
		}
	}
}

// sampled reports whether the VM with this VMM pid has a sample.
func (b *statsBook) sampled(name string, pid int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	vb := b.vms[name]
	return vb != nil && vb.pid == pid && vb.fresh
}

func (b *statsBook) setMetrics(name string, m *api.VMMMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.get(name).metrics = m
}

// notRunning forgets the counters and idle clock of a VM that is not
// running; its history stays for 'vm stats'.
func (b *statsBook) notRunning(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if vb := b.vms[name]; vb != nil && vb.pid != 0 {
		*vb = vmBook{history: vb.history, metrics: vb.metrics}
	}
}

// keepOnly drops the books of VMs that no longer exist.
func (b *statsBook) keepOnly(exist map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name := range b.vms {
		if !exist[name] {
			delete(b.vms, name)
		}
	}
}

// view copies name's samples and state into out.
func (b *statsBook) view(name string, history int, out *api.VMStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	vb := b.vms[name]
	if vb == nil {
		return
	}
	if cur, ok := vb.history.newest(); ok {
		out.Current = &cur
	}
	if history != 0 {
		out.History = vb.history.last(history)
	}
	if vb.metrics != nil {
		m := *vb.metrics
		out.Metrics = &m
	}
	out.Busy = vb.busy
	if !vb.idleAt.IsZero() {
		t := vb.idleAt
		out.IdleSince = &t
	}
}

// ring is a fixed-capacity history that overwrites its oldest entry.
type ring[T any] struct {
	buf  []T
	next int // where the next push goes once buf is full
}

func (r *ring[T]) push(v T) {
	if len(r.buf) < historyLen {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
}

func (r *ring[T]) newest() (T, bool) {
	var zero T
	if len(r.buf) == 0 {
		return zero, false
	}
	if len(r.buf) < historyLen {
		return r.buf[len(r.buf)-1], true
	}
	return r.buf[(r.next+len(r.buf)-1)%len(r.buf)], true
}

// last returns the newest n entries (all when n < 0), oldest first.
func (r *ring[T]) last(n int) []T {
	all := make([]T, 0, len(r.buf))
	all = append(all, r.buf[r.next:]...)
	all = append(all, r.buf[:r.next]...)
	if n >= 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}
