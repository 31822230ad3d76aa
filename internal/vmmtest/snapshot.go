package vmmtest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"banger/internal/vmm"
)

// testSnapshot checks vmm.Snapshotter: a paused guest does not answer
// and a resumed one does; a saved state restored into another runtime
// dir, onto other disks, after its VM was killed, comes back paused and,
// once resumed, remembers what the guest had in memory before the save.
func testSnapshot(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	sn, ok := d.(vmm.Snapshotter)
	if !ok {
		t.Skipf("the %s driver does not implement vmm.Snapshotter", d.Name())
	}
	if s.Remember == nil || s.Recall == nil {
		t.Skip("this setup's guest cannot remember a token (no Setup.Remember and Setup.Recall); run RunSnapshot with a guest that counts")
	}
	ctx := context.Background()
	spec := s.Spec(t)
	h := create(t, d, spec)
	if err := d.Start(ctx, h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitAgent(t, s, d, h, spec)
	if got := recall(t, s, d, h); got != "" {
		t.Fatalf("a cold-booted guest recalls %q; Recall must return \"\" when nothing was remembered", got)
	}
	token := "vmmtest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	remember(t, s, d, h, token)

	for i := 0; i < 2; i++ { // a pause of a paused VM is no error
		if err := sn.Pause(ctx, h); err != nil {
			t.Fatalf("Pause #%d: %v", i+1, err)
		}
	}
	checkFrozen(t, s, d, h, "a paused guest")
	if err := sn.Resume(ctx, h); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	waitAgent(t, s, d, h, spec)

	if err := sn.Pause(ctx, h); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	dir := t.TempDir()
	st, err := sn.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	checkState(t, d, spec, dir, st)
	if err := d.Kill(ctx, h); err != nil {
		t.Fatalf("Kill: %v", err)
	}

	// A fork: a new runtime dir and disks of its own. A spec that does not
	// match the saved device model is refused and leaves nothing.
	fork := s.Spec(t)
	bad := fork
	bad.MemoryMiB += 64
	if h, err := sn.Restore(ctx, bad, st); err == nil {
		d.Kill(ctx, h)
		t.Errorf("Restore into %d MiB of a state saved with %d MiB succeeded", bad.MemoryMiB, st.MemoryMiB)
	} else if ents, _ := os.ReadDir(bad.RuntimeDir); len(ents) > 0 {
		t.Errorf("a refused Restore left %s in the runtime dir", ents[0].Name())
	}
	rctx, cancel := context.WithTimeout(ctx, s.Boot)
	defer cancel()
	h2, err := sn.Restore(rctx, fork, st)
	if err != nil {
		t.Fatalf("Restore: %v\nconsole:\n%s", err, tail(fork.ConsoleLog))
	}
	t.Cleanup(func() { d.Kill(context.Background(), h2) })
	checkFrozen(t, s, d, h2, "a restored guest before Resume")
	if err := sn.Resume(ctx, h2); err != nil {
		t.Fatalf("Resume after Restore: %v", err)
	}
	waitAgent(t, s, d, h2, fork)
	if got := recall(t, s, d, h2); got != token {
		t.Errorf("the restored guest recalls %q, want %q from before the save", got, token)
	}
	if err := d.Kill(ctx, h2); err != nil {
		t.Errorf("Kill of the restored VM: %v", err)
	}
}

// checkState checks what SaveState says it wrote.
func checkState(t *testing.T, d vmm.Driver, spec vmm.Spec, dir string, st vmm.State) {
	t.Helper()
	if st.Driver != d.Name() || st.VMMVersion == "" || st.CPUs != spec.CPUs || st.MemoryMiB != spec.MemoryMiB || st.Bytes <= 0 {
		t.Errorf("SaveState = %+v; want driver %s, a VMM version, %d cpus, %d MiB and its size", st, d.Name(), spec.CPUs, spec.MemoryMiB)
	}
	if abs, _ := filepath.Abs(dir); st.Dir != abs {
		t.Errorf("State.Dir = %q, want %q", st.Dir, abs)
	}
	for _, role := range []string{"memory", "device"} {
		if _, err := os.Stat(filepath.Join(st.Dir, st.Files[role])); st.Files[role] == "" || err != nil {
			t.Errorf("State.Files[%q] = %q: %v", role, st.Files[role], err)
		}
	}
}

// checkFrozen fails if the guest agent answers within a short wait.
func checkFrozen(t *testing.T, s Setup, d vmm.Driver, h *vmm.Handle, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := d.DialAgent(ctx, h)
	if err != nil {
		if errors.Is(err, vmm.ErrNotRunning) {
			t.Fatalf("%s: the VMM died: %v", what, err)
		}
		return
	}
	defer conn.Close()
	if err := s.Ping(ctx, conn); err == nil {
		t.Errorf("%s answered its agent", what)
	}
}

func remember(t *testing.T, s Setup, d vmm.Driver, h *vmm.Handle, token string) {
	t.Helper()
	withAgent(t, d, h, func(ctx context.Context, conn net.Conn) error { return s.Remember(ctx, conn, token) })
}

func recall(t *testing.T, s Setup, d vmm.Driver, h *vmm.Handle) (got string) {
	t.Helper()
	withAgent(t, d, h, func(ctx context.Context, conn net.Conn) (err error) {
		got, err = s.Recall(ctx, conn)
		return err
	})
	return got
}

func withAgent(t *testing.T, d vmm.Driver, h *vmm.Handle, f func(context.Context, net.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := d.DialAgent(ctx, h)
	if err != nil {
		t.Fatalf("dialing the agent: %v", err)
	}
	defer conn.Close()
	if err := f(ctx, conn); err != nil {
		t.Fatal(err)
	}
}
