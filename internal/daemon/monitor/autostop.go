package monitor

import (
	"context"
	"fmt"
	"time"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/store"
)

// Auto-stop: a running VM nobody uses for auto_stop_stale_after is shut
// down gracefully, so idle VMs do not eat the laptop. "Nobody uses it"
// means, on every stats sample of that stretch: no established SSH
// connection in the guest, no session a host is attached to, no running
// pipe-mode session (something feeds it input) and guest CPU below
// IdleCPUPercent. A guest whose agent does not answer is not judged idle:
// what it is doing is unknown. VMs with keep_alive are never stopped.

// DefaultIdleCPUPercent is the guest CPU share (of all vCPUs) under which
// a VM counts as idle.
const DefaultIdleCPUPercent = 5.0

// busyReason says why a sample shows the VM in use, or "" when it is idle.
func busyReason(rd reading, s api.StatsSample, rated bool, idleCPU float64) string {
	switch {
	case rd.guest == nil:
		return "guest agent not answering"
	case rd.sessionsErr != nil:
		return "sessions unknown"
	case !rated:
		return "measuring"
	case s.SSHConnections > 0:
		return plural(s.SSHConnections, "ssh connection")
	}
	for _, ss := range rd.sessions {
		switch {
		case ss.Attached:
			return fmt.Sprintf("session %q attached", ss.Name)
		case ss.Mode == agentproto.SessionPipe && ss.State == agentproto.SessionRunning:
			return fmt.Sprintf("pipe session %q running", ss.Name)
		}
	}
	if s.CPUPercent >= idleCPU {
		return fmt.Sprintf("cpu %.1f%%", s.CPUPercent)
	}
	return ""
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// judge moves the VM's idle clock with a new sample and stops the VM once
// it has been idle for auto_stop_stale_after.
func (m *Monitor) judge(ctx context.Context, r store.VM, rd reading, s api.StatsSample, rated bool) {
	busy := busyReason(rd, s, rated, m.idleCPU)
	if busy == "" {
		if n := m.execs.OpenExecs(r.Name); n > 0 {
			busy = plural(n, "exec client") + " connected"
		}
	}
	after := m.cfg.AutoStopStaleAfter
	idleAt, due := m.stats.idle(r.Name, busy, rd.at, after > 0 && !r.KeepAlive, after)
	if due {
		m.autoStop(ctx, r.Name, rd.at.Sub(idleAt))
	}
}

// idle records busy (or idleness) at time at; with stoppable it reports
// whether the idle stretch has reached after and the VM should be stopped,
// which it reports once until the VM runs again or the stop fails.
func (b *statsBook) idle(name, busy string, at time.Time, stoppable bool, after time.Duration) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	vb := b.get(name)
	vb.busy = busy
	switch {
	case busy != "":
		vb.idleAt = time.Time{}
	case vb.idleAt.IsZero():
		vb.idleAt = at
	}
	if !stoppable || busy != "" || vb.stopping || at.Sub(vb.idleAt) < after {
		return vb.idleAt, false
	}
	vb.stopping = true
	return vb.idleAt, true
}

func (b *statsBook) stopFailed(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if vb := b.vms[name]; vb != nil {
		vb.stopping = false
	}
}

// autoStop stops the VM in the background, recording why.
func (m *Monitor) autoStop(ctx context.Context, name string, idle time.Duration) {
	// The user may have said keep-alive since this round's sample.
	// It may have been paused or stopped since too.
	if r, err := m.vms.Row(ctx, name); err != nil || r.KeepAlive || r.State != api.VMRunning {
		m.stats.stopFailed(name)
		return
	}
	m.events.Event(ctx, "info", "vm/"+name, fmt.Sprintf(
		"vm %s idle for %s (no ssh connection or attached session, cpu under %g%%): stopping it (auto_stop_stale_after); "+
			"start it again with 'banger vm start %s', or exempt it with 'banger vm set %s --keep-alive'",
		name, idle.Round(time.Second), m.idleCPU, name, name))
	m.pollers.Go(func() {
		if _, err := m.vms.StopVM(ctx, name); err != nil {
			m.stats.stopFailed(name)
			m.events.Event(ctx, "warn", "vm/"+name, fmt.Sprintf("auto-stop of vm %s failed: %v", name, err))
		}
	})
}
