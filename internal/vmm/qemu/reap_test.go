package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/vmm"
)

// A QEMU whose starter is gone (a daemon killed while it mapped a
// template's memory) is found and ended from its runtime directory
// alone, by its pid file or, when that is unusable, by the pid file path
// on its command line; a process that merely took a recorded pid is
// left alone.
func TestReapFindsQEMUByRuntimeDir(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes the runtime dir as the lost QEMU left it.
		spoil func(t *testing.T, rt string)
	}{
		{name: "pid file"},
		{name: "garbage pid file", spoil: func(t *testing.T, rt string) {
			os.WriteFile(filepath.Join(rt, pidFile), []byte("not a pid\n"), 0o644)
		}},
		{name: "no pid file", spoil: func(t *testing.T, rt string) {
			os.Remove(filepath.Join(rt, pidFile))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, spec := fakeDriver(t, "ok")
			if _, err := d.Create(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			child := fakeChild(t, spec.RuntimeDir)
			if tt.spoil != nil {
				tt.spoil(t, spec.RuntimeDir)
			}
			// A new driver, as in a new daemon: it knows nothing of it.
			d = New(Options{Binary: d.opts.Binary, Accel: "tcg"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := d.Reap(ctx, spec.RuntimeDir); err != nil {
				t.Fatal(err)
			}
			if vmm.Alive(child.PID, child.StartTime) {
				t.Errorf("the lost qemu (pid %d) still runs after Reap", child.PID)
			}
			for _, f := range []string{pidFile, qmpSocket} {
				if _, err := os.Stat(filepath.Join(spec.RuntimeDir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left in the runtime dir", f)
				}
			}
			// Nothing runs there any more: a second Reap has nothing to do.
			if err := d.Reap(ctx, spec.RuntimeDir); err != nil {
				t.Errorf("a second Reap: %v", err)
			}
		})
	}
}

// A pid file whose pid now names another process (the QEMU exited and
// its pid was reused) does not get that process killed.
func TestReapLeavesReusedPIDAlone(t *testing.T) {
	rt := t.TempDir()
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	os.WriteFile(filepath.Join(rt, pidFile), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := New(Options{Accel: "tcg"}).Reap(ctx, rt); err != nil {
		t.Fatal(err)
	}
	// It is this test's child: killed, it would linger as a zombie.
	if stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(other.Process.Pid), "stat")); err != nil || strings.Contains(string(stat), ") Z ") {
		t.Errorf("Reap killed pid %d, which is not the qemu of %s", other.Process.Pid, rt)
	}
	if _, err := os.Stat(filepath.Join(rt, pidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the stale pid file is left")
	}
}
