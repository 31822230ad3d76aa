package vmm

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func startSleep(t *testing.T) *Handle {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	st, err := ProcStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait() }() // reap, so the exit is visible as it would be for a detached VMM
	return &Handle{PID: cmd.Process.Pid, StartTime: st}
}

func TestWaitExitSeesTheExit(t *testing.T) {
	h := startSleep(t)
	done := make(chan error, 1)
	go func() { done <- WaitExit(context.Background(), h) }()
	select {
	case err := <-done:
		t.Fatalf("WaitExit returned %v while the process runs", err)
	default:
	}
	syscall.Kill(h.PID, syscall.SIGKILL)
	if err := <-done; err != nil {
		t.Errorf("WaitExit after the process died: %v", err)
	}
	if err := WaitExit(context.Background(), h); err != nil {
		t.Errorf("WaitExit of a dead process: %v", err)
	}
}

func TestWaitExitEndsWithTheContext(t *testing.T) {
	h := startSleep(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- WaitExit(ctx, h) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WaitExit after cancel = %v, want context.Canceled", err)
	}
	tctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := WaitExit(tctx, h); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitExit past its deadline = %v, want DeadlineExceeded", err)
	}
	if !Alive(h.PID, h.StartTime) {
		t.Error("the process died")
	}
}
