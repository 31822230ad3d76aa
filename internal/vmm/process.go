package vmm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcStartTime reads a process's start time (clock ticks since boot,
// field 22 of /proc/PID/stat). Together with the pid it identifies a
// process across pid reuse.
func ProcStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parens: parse
	// from the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	fields := bytes.Fields(data[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %d fields", pid, len(fields))
	}
	if fields[0][0] == 'Z' {
		return 0, ErrNotRunning
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// Alive reports whether pid is alive and still the process that started
// at startTime.
func Alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ProcStartTime(pid)
	return err == nil && st == startTime
}

// CheckAlive returns ErrNotRunning unless h's process is alive.
func CheckAlive(h *Handle) error {
	if !Alive(h.PID, h.StartTime) {
		return fmt.Errorf("%w (pid %d)", ErrNotRunning, h.PID)
	}
	return nil
}

// Signal sends sig to h's process if it is still the same process.
func Signal(h *Handle, sig syscall.Signal) error {
	if !Alive(h.PID, h.StartTime) {
		return nil
	}
	if err := syscall.Kill(h.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", h.PID, err)
	}
	return nil
}

// WaitExit blocks until h's process has exited or ctx ends. It works for
// processes that are not our children (re-adopted after a restart) by
// waiting for a pidfd to become readable in the runtime's poller, so a
// wait costs no wakeups however long it lasts; without pidfds it falls
// back to polling /proc.
func WaitExit(ctx context.Context, h *Handle) error {
	if !Alive(h.PID, h.StartTime) {
		return nil
	}
	fd, err := unix.PidfdOpen(h.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return pollExit(ctx, h)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	// The pid may have been reused between the check and the open.
	if !Alive(h.PID, h.StartTime) {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return pollExit(ctx, h)
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	// A pidfd becomes readable when the process exits; Read calls back
	// until the callback says it is done.
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return (err == nil && n > 0) || ctx.Err() != nil
	})
	switch {
	case ctx.Err() != nil && Alive(h.PID, h.StartTime):
		return ctx.Err()
	case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
		return pollExit(ctx, h) // the pidfd is not pollable here
	}
	// The pidfd turns readable as the thread group exits, which can be a
	// moment before /proc shows the process as gone: callers that go on
	// to check Alive (Release) must not see it still there.
	return pollExit(ctx, h)
}

func pollExit(ctx context.Context, h *Handle) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for Alive(h.PID, h.StartTime) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Terminate sends SIGTERM, waits up to grace, then SIGKILLs and waits.
func Terminate(ctx context.Context, h *Handle, grace time.Duration) error {
	if err := Signal(h, syscall.SIGTERM); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, grace)
	err := WaitExit(wctx, h)
	cancel()
	if err == nil {
		return nil
	}
	if err := Signal(h, syscall.SIGKILL); err != nil {
		return err
	}
	return WaitExit(ctx, h)
}
