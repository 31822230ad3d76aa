package vmm

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture banger runs on.
const clockTicks = 100

// ProcStats are what the host kernel counts for a VMM process.
type ProcStats struct {
	CPUTime time.Duration // user + system time
	RSS     uint64        // resident bytes
	Threads int
}

// ProcessStats reads h's process counters from /proc. It returns
// ErrNotRunning when the process is gone or its pid now names another
// process.
func ProcessStats(h *Handle) (ProcStats, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(h.PID) + "/stat")
	if err != nil {
		return ProcStats{}, fmt.Errorf("%w (pid %d)", ErrNotRunning, h.PID)
	}
	return parseProcStat(data, h)
}

func parseProcStat(data []byte, h *Handle) (ProcStats, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ProcStats{}, fmt.Errorf("parsing /proc/%d/stat", h.PID)
	}
	// f[0] is field 3 (state): field N is f[N-3].
	f := bytes.Fields(data[i+1:])
	if len(f) < 22 {
		return ProcStats{}, fmt.Errorf("parsing /proc/%d/stat: %d fields", h.PID, len(f))
	}
	num := func(field int) uint64 {
		n, _ := strconv.ParseUint(string(f[field-3]), 10, 64)
		return n
	}
	if f[0][0] == 'Z' || num(22) != h.StartTime {
		return ProcStats{}, fmt.Errorf("%w (pid %d)", ErrNotRunning, h.PID)
	}
	ticks := num(14) + num(15) // utime + stime
	return ProcStats{
		CPUTime: time.Duration(ticks) * time.Second / clockTicks,
		RSS:     num(24) * uint64(os.Getpagesize()),
		Threads: int(num(20)),
	}, nil
}
