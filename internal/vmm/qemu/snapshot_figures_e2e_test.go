//go:build e2e

package qemu_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
)

// TestSnapshotFigures measures, for guests of 256, 512 and 1024 MiB and
// both places guest memory can live (anonymous memory saved into the
// migration stream, or a shared file copied beside a device-only
// stream): the save time, the files' size, the time from Restore to the
// agent answering for two restores of one state, their memory (RSS and
// PSS: a private mapping of one file shares unchanged pages), and a cold
// boot to the agent answering as the alternative. It asserts nothing
// about time; run it with BANGER_E2E_FIGURES=1.
func TestSnapshotFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure snapshot figures")
	}
	fixture.Require(t, "qemu-system-x86_64")
	for _, mib := range []int{256, 512, 1024} {
		for _, fileMemory := range []bool{false, true} {
			figures(t, mib, fileMemory)
		}
	}
}

func figures(t *testing.T, mib int, fileMemory bool) {
	ctx := context.Background()
	mode := "stream"
	if fileMemory {
		mode = "file"
	}
	d := qemu.New(qemu.Options{Accel: os.Getenv("BANGER_QEMU_ACCEL"), MemoryDir: memoryDir(t, fileMemory)})
	spec := counterSpec(t, mib)
	t0 := time.Now()
	h, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Kill(ctx, h)
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	answer(t, d, h, spec)
	cold := time.Since(t0)
	// Let the guest settle: its counter has run a few seconds.
	for n := 0; n < 3; {
		conn, err := d.DialAgent(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, n, err = readCounter(cctx, conn)
		cancel()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	srcMem := memOf(h.PID)
	if err := d.Pause(ctx, h); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t0 = time.Now()
	st, err := d.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatal(err)
	}
	save := time.Since(t0)
	d.Kill(ctx, h)
	var sizes []string
	for role, name := range st.Files {
		fi, _ := os.Stat(filepath.Join(dir, name))
		sizes = append(sizes, role+"="+strconv.FormatInt(fi.Size()>>10, 10)+"KiB")
	}
	var restores []string
	var pids []int
	for i := 0; i < 2; i++ {
		spec2 := counterSpec(t, mib)
		t0 = time.Now()
		h2, err := d.Restore(ctx, spec2, st)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Kill(ctx, h2)
		loaded := time.Since(t0)
		if err := d.Resume(ctx, h2); err != nil {
			t.Fatal(err)
		}
		answer(t, d, h2, spec2)
		total := time.Since(t0)
		restores = append(restores, fmt.Sprintf("restore %s +resume to agent %s (%.2fx cold boot)",
			loaded.Round(10*time.Millisecond), (total-loaded).Round(10*time.Millisecond), total.Seconds()/cold.Seconds()))
		pids = append(pids, h2.PID)
	}
	// Both restored guests have run a moment; measure them side by side.
	time.Sleep(2 * time.Second)
	var mems []string
	for _, pid := range pids {
		mems = append(mems, memOf(pid))
	}
	t.Logf("%4d MiB %-6s: cold boot to agent %s, then %s; save %s, on disk %d KiB (%s); %s; %s",
		mib, mode, cold.Round(10*time.Millisecond), srcMem, save.Round(10*time.Millisecond), st.Bytes>>10, strings.Join(sizes, " "),
		strings.Join(restores, "; "), strings.Join(mems, " "))
}

// answer waits for the agent to echo a ping.
func answer(t *testing.T, d vmm.Driver, h *vmm.Handle, spec vmm.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		conn, err := d.DialAgent(ctx, h)
		if err == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			err = echoPing(pctx, conn)
			pcancel()
			conn.Close()
			if err == nil {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("agent did not answer; console: %s", spec.ConsoleLog)
}

func memOf(pid int) string {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return "?"
	}
	defer f.Close()
	var rss, pss string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "Rss:" {
			rss = fs[1]
		}
		if len(fs) >= 2 && fs[0] == "Pss:" {
			pss = fs[1]
		}
	}
	return "rss=" + rss + "KiB,pss=" + pss + "KiB"
}
