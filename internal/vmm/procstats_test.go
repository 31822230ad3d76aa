package vmm

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 14/15 (utime/stime) = 250+50 ticks, 20 threads = 3, 22 start = 777, 24 rss = 10 pages.
	stat := []byte("1234 (qemu (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 777 123456 10 18446744073709551615 0 0")
	got, err := parseProcStat(stat, &Handle{PID: 1234, StartTime: 777})
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStats{CPUTime: 3 * time.Second, RSS: 10 * uint64(os.Getpagesize()), Threads: 3}
	if got != want {
		t.Errorf("parseProcStat = %+v, want %+v", got, want)
	}
	if _, err := parseProcStat(stat, &Handle{PID: 1234, StartTime: 778}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("another start time: err = %v, want ErrNotRunning", err)
	}
}

func TestProcessStatsOfSelf(t *testing.T) {
	st, err := ProcStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProcessStats(&Handle{PID: os.Getpid(), StartTime: st})
	if err != nil {
		t.Fatal(err)
	}
	if got.RSS == 0 || got.Threads == 0 {
		t.Errorf("ProcessStats(self) = %+v; want a resident size and threads", got)
	}
	if _, err := ProcessStats(&Handle{PID: 1 << 30}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("ProcessStats of no process: %v, want ErrNotRunning", err)
	}
}
