//go:build e2e

package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
)

// A real daemonized QEMU whose starter is gone is found and ended from
// its runtime directory alone: by its pid file, or without one by the
// pid file path on its command line. (It runs no guest: -M none.)
func TestReapRealQEMU(t *testing.T) {
	fixture.Require(t, "qemu-system-x86_64")
	for _, withPIDFile := range []bool{true, false} {
		t.Run("pidfile="+strconv.FormatBool(withPIDFile), func(t *testing.T) {
			rt := t.TempDir()
			pidPath := filepath.Join(rt, "qemu.pid")
			out, err := exec.Command("qemu-system-x86_64", "-M", "none", "-S", "-display", "none", "-nodefaults",
				"-no-user-config", "-daemonize", "-pidfile", pidPath).CombinedOutput()
			if err != nil {
				t.Fatalf("starting qemu: %v: %s", err, out)
			}
			b, err := os.ReadFile(pidPath)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			st, err := vmm.ProcStartTime(pid)
			if err != nil {
				t.Fatal(err)
			}
			h := &vmm.Handle{PID: pid, StartTime: st}
			t.Cleanup(func() { vmm.Signal(h, 9) })
			if !withPIDFile {
				os.Remove(pidPath)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := qemu.New(qemu.Options{}).Reap(ctx, rt); err != nil {
				t.Fatal(err)
			}
			if vmm.Alive(pid, st) {
				t.Errorf("qemu (pid %d) still runs after Reap", pid)
			}
			if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
				t.Errorf("the pid file is left: %v", err)
			}
		})
	}
}
