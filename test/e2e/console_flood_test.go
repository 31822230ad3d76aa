//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/vmm"
)

// TestConsoleFloodIsBounded: a guest writes its serial port without end
// (as root inside a guest can). The console log's disk use stays near its
// bound while QEMU keeps writing, 'vm logs' gives the kept tail, and the
// guest's last words are there.
func TestConsoleFloodIsBounded(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "flood", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	path := filepath.Join(e.vm("flood").Dir, "console.log")
	// Three times the bound, then a marker.
	e.ssh("flood", "head -c 25000000 /dev/zero | tr '\\000' x > /dev/ttyS0; echo; echo flood-done > /dev/ttyS0")
	var st syscall.Stat_t
	deadline := time.Now().Add(time.Minute)
	for {
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 <= vmm.LogLimit || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("console.log after the flood: %d MiB written, %.1f MiB on disk", st.Size>>20, float64(st.Blocks*512)/(1<<20))
	if st.Size < 25000000 {
		t.Errorf("console.log is %d bytes long; the flood did not reach it", st.Size)
	}
	if st.Blocks*512 > vmm.LogLimit {
		t.Errorf("console.log takes %d MiB on disk; want at most %d", st.Blocks*512>>20, vmm.LogLimit>>20)
	}
	logs := e.ok("vm", "logs", "flood")
	if len(logs) > vmm.LogLimit || !strings.Contains(logs, "flood-done") || strings.Contains(logs, "\x00") {
		t.Errorf("vm logs gave %d bytes (want at most %d, ending with flood-done, no hole)", len(logs), vmm.LogLimit)
	}
	// A restart compacts the log into a fresh file holding the tail.
	e.ok("vm", "restart", "flood")
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Size() > 2*vmm.LogKeep {
		t.Errorf("console.log after a restart is %d bytes long; want a compacted file", fi.Size())
	}
	e.ok("vm", "delete", "flood")
}
