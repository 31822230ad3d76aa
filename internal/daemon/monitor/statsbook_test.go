package monitor

import (
	"banger/api"
	"banger/internal/agentproto"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBusyReason(t *testing.T) {
	guest := &agentproto.Stats{}
	idle := api.StatsSample{CPUPercent: 1}
	tests := []struct {
		name  string
		rd    reading
		s     api.StatsSample
		rated bool
		want  string
	}{
		{"idle", reading{guest: guest}, idle, true, ""},
		{"agent down", reading{guestErr: errors.New("eof")}, idle, true, "guest agent not answering"},
		{"sessions unknown", reading{guest: guest, sessionsErr: errors.New("eof")}, idle, true, "sessions unknown"},
		{"first sample", reading{guest: guest}, idle, false, "measuring"},
		{"ssh", reading{guest: guest}, api.StatsSample{SSHConnections: 2}, true, "2 ssh connections"},
		{"attached", reading{guest: guest, sessions: []agentproto.Session{
			{Name: "done", State: agentproto.SessionExited, Mode: agentproto.SessionPipe},
			{Name: "agent", State: agentproto.SessionRunning, Mode: agentproto.SessionDetached, Attached: true},
		}}, idle, true, `session "agent" attached`},
		{"pipe running", reading{guest: guest, sessions: []agentproto.Session{
			{Name: "repl", State: agentproto.SessionRunning, Mode: agentproto.SessionPipe},
		}}, idle, true, `pipe session "repl" running`},
		{"detached running", reading{guest: guest, sessions: []agentproto.Session{
			{Name: "server", State: agentproto.SessionRunning, Mode: agentproto.SessionDetached},
		}}, idle, true, ""},
		{"cpu", reading{guest: guest}, api.StatsSample{CPUPercent: 42}, true, "cpu 42.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := busyReason(tt.rd, tt.s, tt.rated, DefaultIdleCPUPercent); got != tt.want {
				t.Errorf("busyReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIdleClock(t *testing.T) {
	b := newStatsBook()
	t0 := time.Unix(1000, 0)
	step := func(busy string, sec int, stoppable bool) bool {
		_, due := b.idle("vm", busy, t0.Add(time.Duration(sec)*time.Second), stoppable, 10*time.Second)
		return due
	}
	if step("", 0, true) || step("", 9, true) {
		t.Fatal("due before the threshold")
	}
	if step("cpu 50%", 10, true) || step("", 11, true) || step("", 20, true) {
		t.Fatal("activity did not restart the idle clock")
	}
	if step("", 25, false) {
		t.Fatal("due while kept alive")
	}
	if !step("", 21, true) {
		t.Fatal("not due after the threshold")
	}
	if step("", 40, true) {
		t.Fatal("due twice for one stop")
	}
	b.stopFailed("vm")
	if !step("", 41, true) {
		t.Fatal("not due again after a failed stop")
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
	prev := &agentproto.Stats{
		Time: t0, Uptime: 100,
		CPU:      agentproto.CPUStats{Count: 2, User: 100, System: 100, Idle: 800},
		Memory:   agentproto.MemStats{Total: 1000, Available: 400},
		Disks:    []agentproto.Disk{{Device: "/dev/vda", Mount: "/", Total: 100, Free: 30, ReadBytes: 1000, WrittenBytes: 500}},
		Networks: []agentproto.NetIf{{Name: "lo", RxBytes: 5000}, {Name: "eth0", RxBytes: 100, TxBytes: 200}},
	}
	cur := &agentproto.Stats{
		Time: t0.Add(2 * time.Second), Uptime: 102, SSHConnections: 1,
		CPU:      agentproto.CPUStats{Count: 2, User: 150, System: 100, Idle: 950}, // 50 busy of 200
		Memory:   agentproto.MemStats{Total: 1000, Available: 300},
		Disks:    []agentproto.Disk{{Device: "/dev/vda", Mount: "/", Total: 100, Free: 20, ReadBytes: 3000, WrittenBytes: 900}},
		Networks: []agentproto.NetIf{{Name: "lo", RxBytes: 9000}, {Name: "eth0", RxBytes: 300, TxBytes: 600}},
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
