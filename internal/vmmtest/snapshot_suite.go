package vmmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/disk"
	"banger/internal/vmm"
)

// SnapshotSetup tells the snapshot suite how to read the guest's state.
type SnapshotSetup struct {
	Setup
	// Counter reads from the guest a boot id (new at every cold boot)
	// and a count a process in the guest raises while it runs. A guest
	// restored from a saved state has the same boot id and a count no
	// lower than at the save.
	Counter func(ctx context.Context, conn net.Conn) (boot string, n int, err error)
}

// RunSnapshot checks a driver's vmm.Snapshotter: pause and resume, save,
// kill, restore into a new runtime dir, and two restores of one state.
func RunSnapshot(t *testing.T, s SnapshotSetup) {
	if s.Boot == 0 {
		s.Boot = 2 * time.Minute
	}
	if _, ok := s.NewDriver(t).(vmm.Snapshotter); !ok {
		t.Skip("driver does not implement vmm.Snapshotter")
	}
	t.Run("PauseResume", func(t *testing.T) { testPauseResume(t, s) })
	t.Run("SaveKillRestore", func(t *testing.T) { testSaveRestore(t, s) })
	t.Run("MapMemory", func(t *testing.T) { testMapMemory(t, s) })
}

// boot creates and starts a VM and waits for its agent.
func bootForSnapshot(t *testing.T, s SnapshotSetup, d vmm.Driver, spec vmm.Spec) *vmm.Handle {
	t.Helper()
	h := create(t, d, spec)
	if err := d.Start(context.Background(), h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitAgent(t, s.Setup, d, h, spec)
	return h
}

func testPauseResume(t *testing.T, s SnapshotSetup) {
	d := s.NewDriver(t)
	spec := s.Spec(t)
	h := bootForSnapshot(t, s, d, spec)
	sn := d.(vmm.Snapshotter)
	ctx := context.Background()
	if err := sn.Pause(ctx, h); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := sn.Pause(ctx, h); err != nil {
		t.Errorf("second Pause = %v, want nil", err)
	}
	// A paused guest does not answer; its transport stays up.
	conn, err := d.DialAgent(ctx, h)
	if err != nil {
		t.Fatalf("DialAgent to a paused VM: %v", err)
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = s.Ping(pctx, conn)
	cancel()
	if err == nil {
		t.Fatal("a paused guest answered a ping")
	}
	conn.Close()
	if err := sn.Resume(ctx, h); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	waitAgent(t, s.Setup, d, h, spec)
}

func testSaveRestore(t *testing.T, s SnapshotSetup) {
	d := s.NewDriver(t)
	spec := s.Spec(t)
	h := bootForSnapshot(t, s, d, spec)
	sn := d.(vmm.Snapshotter)
	ctx := context.Background()
	boot0, n0 := counter(t, s, d, h, 2)
	if err := sn.Pause(ctx, h); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	dir := t.TempDir()
	st, err := sn.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	checkSavedState(t, d, spec, st, dir)
	// The saved VM can go on running: a fork's parent does.
	if err := sn.Resume(ctx, h); err != nil {
		t.Fatalf("Resume after SaveState: %v", err)
	}
	waitAgent(t, s.Setup, d, h, spec)
	if boot, _ := counter(t, s, d, h, n0+1); boot != boot0 {
		t.Errorf("the saved VM rebooted after Resume: boot id %s, was %s", boot, boot0)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}

	// A new daemon restores into a new runtime dir, twice from the one
	// state, as forks do: each on its own copy of the saved VM's disks.
	d2 := s.NewDriver(t)
	for i := 0; i < 2; i++ {
		spec2 := s.Spec(t)
		copyDisks(t, spec.Disks, spec2.Disks)
		h2, err := d2.(vmm.Snapshotter).Restore(ctx, spec2, st)
		if err != nil {
			t.Fatalf("Restore %d: %v\nconsole:\n%s", i, err, tail(spec2.ConsoleLog))
		}
		t.Cleanup(func() { d2.Kill(context.Background(), h2) })
		if h2.RuntimeDir != spec2.RuntimeDir {
			t.Errorf("restored handle's runtime dir = %s, want %s", h2.RuntimeDir, spec2.RuntimeDir)
		}
		for name, p := range h2.Sockets {
			if filepath.Dir(p) != spec2.RuntimeDir {
				t.Errorf("restored socket %s = %s, not in the new runtime dir %s", name, p, spec2.RuntimeDir)
			}
		}
		if err := d2.(vmm.Snapshotter).Resume(ctx, h2); err != nil {
			t.Fatalf("Resume after Restore %d: %v", i, err)
		}
		waitAgent(t, s.Setup, d2, h2, spec2)
		boot1, n1 := counter(t, s, d2, h2, 0)
		if boot1 != boot0 || n1 < n0 {
			t.Errorf("restore %d: guest counter at boot %s count %d, want boot %s count >= %d (it was saved then)", i, boot1, n1, boot0, n0)
		}
	}
}

// checkState checks what SaveState reports against what it wrote.
func checkSavedState(t *testing.T, d vmm.Driver, spec vmm.Spec, st vmm.State, dir string) {
	t.Helper()
	if st.Driver != d.Name() || st.VMMVersion == "" || st.CPUs != spec.CPUs || st.MemoryMiB != spec.MemoryMiB {
		t.Errorf("state = %+v, want driver %s, a version, %d cpus, %d MiB", st, d.Name(), spec.CPUs, spec.MemoryMiB)
	}
	if st.Dir != dir || len(st.Files) == 0 || st.Bytes <= 0 {
		t.Errorf("state = %+v, want files in %s with their size", st, dir)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(st.Files) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %q, want exactly the state's files %v (no temporary ones)", names, st.Files)
	}
	for role, name := range st.Files {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("state file %s: %v", role, err)
		}
	}
}

// counter reads the guest's counter, waiting until it reaches min.
func counter(t *testing.T, s SnapshotSetup, d vmm.Driver, h *vmm.Handle, min int) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Boot)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		conn, err := d.DialAgent(ctx, h)
		if err == nil {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			var boot string
			var n int
			boot, n, err = s.Counter(cctx, conn)
			ccancel()
			conn.Close()
			if err == nil && n >= min {
				return boot, n
			}
		}
		if err != nil {
			last = err
		}
		if errors.Is(err, vmm.ErrNotRunning) {
			t.Fatalf("vm died: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("guest counter did not reach %d: %v", min, last)
	return "", 0
}

// copyDisks replaces each of dst's disks by a copy of src's.
func copyDisks(t *testing.T, src, dst []vmm.Disk) {
	t.Helper()
	if len(src) != len(dst) {
		t.Fatalf("Spec returned %d disks, then %d", len(src), len(dst))
	}
	for i := range src {
		os.Remove(dst[i].Path)
		if _, err := disk.Copy(context.Background(), src[i].Path, dst[i].Path); err != nil {
			t.Fatal(err)
		}
	}
}

// testMapMemory checks vmm.MemoryMapper: a saved state whose memory is
// mapped into a file of its own restores, twice at once, to the guest as
// it was saved; a spec that does not match leaves the state as it was.
func testMapMemory(t *testing.T, s SnapshotSetup) {
	d := s.NewDriver(t)
	mm, ok := d.(vmm.MemoryMapper)
	if !ok {
		t.Skipf("the %s driver does not implement vmm.MemoryMapper", d.Name())
	}
	sn := d.(vmm.Snapshotter)
	ctx := context.Background()
	spec := s.Spec(t)
	h := bootForSnapshot(t, s, d, spec)
	boot0, n0 := counter(t, s, d, h, 2)
	if err := sn.Pause(ctx, h); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	dir := t.TempDir()
	st, err := sn.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	// The mapping runs on copies of the saved VM's disks, as a template's.
	saved := s.Spec(t)
	copyDisks(t, spec.Disks, saved.Disks)

	bad := saved
	bad.MemoryMiB += 64
	if _, err := mm.MapMemory(ctx, bad, st); err == nil && st.Files["memory"] == "" {
		t.Errorf("MapMemory with %d MiB of a state saved with %d MiB succeeded", bad.MemoryMiB, st.MemoryMiB)
	}
	checkSavedState(t, d, spec, st, dir)

	mapped, err := mm.MapMemory(ctx, saved, st)
	if err != nil {
		t.Fatalf("MapMemory: %v\nconsole:\n%s", err, tail(saved.ConsoleLog))
	}
	checkSavedState(t, d, spec, mapped, dir)
	if mapped.Files["memory"] == "" {
		t.Errorf("mapped state %+v has no memory file", mapped)
	}
	// A VM on file-backed memory saves its memory as a file: that state
	// is mapped already; one on anonymous memory saves it in the stream.
	if wantSaved := st.Files["memory"] != ""; mm.Mapped(st) != wantSaved || !mm.Mapped(mapped) {
		t.Errorf("Mapped(saved) = %v, Mapped(mapped) = %v; want %v, true", mm.Mapped(st), mm.Mapped(mapped), wantSaved)
	}
	if again, err := mm.MapMemory(ctx, saved, mapped); err != nil || !maps.Equal(again.Files, mapped.Files) {
		t.Errorf("MapMemory of a mapped state = %+v, %v; want it unchanged", again.Files, err)
	}
	if ents, _ := os.ReadDir(saved.RuntimeDir); len(ents) > 0 {
		t.Errorf("MapMemory left %s in its runtime dir", ents[0].Name())
	}

	// Two VMs restored from the mapped state run at once, each from the
	// instant of the save, and neither writes the state's memory.
	before := fileSum(t, filepath.Join(dir, mapped.Files["memory"]))
	var hs []*vmm.Handle
	for i := 0; i < 2; i++ {
		spec2 := s.Spec(t)
		copyDisks(t, spec.Disks, spec2.Disks)
		h2, err := sn.Restore(ctx, spec2, mapped)
		if err != nil {
			t.Fatalf("Restore %d of the mapped state: %v\nconsole:\n%s", i, err, tail(spec2.ConsoleLog))
		}
		t.Cleanup(func() { d.Kill(context.Background(), h2) })
		if err := sn.Resume(ctx, h2); err != nil {
			t.Fatalf("Resume %d: %v", i, err)
		}
		hs = append(hs, h2)
	}
	for i, h2 := range hs {
		boot1, n1 := counter(t, s, d, h2, n0+1)
		if boot1 != boot0 || n1 < n0 {
			t.Errorf("restore %d: guest counter at boot %s count %d, want boot %s count >= %d", i, boot1, n1, boot0, n0)
		}
	}
	for _, h2 := range hs {
		d.Kill(ctx, h2)
	}
	if after := fileSum(t, filepath.Join(dir, mapped.Files["memory"])); after != before {
		t.Error("running VMs restored from a mapped state wrote to its memory file")
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
