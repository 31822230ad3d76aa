package firecracker_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"banger/internal/agentproto"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// TestJailerSnapshot saves a jailed VM and restores it as a fork in a
// jail of its own: Firecracker writes the state at the chroot's top, the
// driver moves it out; a restore links it into the new chroot for the
// jail's user, and the fork's guest comes back with what it had.
func TestJailerSnapshot(t *testing.T) {
	requiresRoot(t)
	base, err := os.MkdirTemp("", "bgj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	jailer, err := fcstandin.InstallJailer(t.TempDir(), fcstandin.JailerOptions{Record: rec, CgroupRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := firecracker.New(firecracker.Options{
		Binary: standInBinary(t, fcstandin.Options{Record: rec}),
		Jailer: &firecracker.Jailer{Binary: jailer, UID: 4242, GID: 4243, ChrootBase: base},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := newSpec(t)
	h := create(t, d, spec)
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	// No programs in the jail to run a session: the token goes into a
	// file in the guest's home, which is in the stand-in guest's memory.
	withConn(t, ctx, d, h, func(ctx context.Context, conn net.Conn) error {
		c, err := agentproto.NewClient(ctx, conn)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.PutFiles(ctx, []agentproto.File{{Path: "mark", Content: []byte("jailed")}})
	})
	if err := d.Pause(ctx, h); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := d.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatalf("SaveState under the jailer: %v", err)
	}
	if left := runtimeLeftovers(t, dir); len(left) != 2 {
		t.Errorf("state dir holds %v, want memory and vmstate", left)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}

	fork := forkSpec(t)
	h2, err := d.Restore(ctx, fork, st)
	if err != nil {
		t.Fatalf("Restore under the jailer: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h2) })
	if h2.Sockets["jail"] == h.Sockets["jail"] {
		t.Errorf("the fork runs in its parent's jail %s", h2.Sockets["jail"])
	}
	if err := d.Resume(ctx, h2); err != nil {
		t.Fatal(err)
	}
	withConn(t, ctx, d, h2, ping)
	// The stand-in keeps the guest's memory in its jail, under guest/ram.<pid>.
	mark := filepath.Join(h2.Sockets["jail"], "guest", "ram."+strconv.Itoa(h2.PID), "home", "mark")
	if got, err := os.ReadFile(mark); string(got) != "jailed" {
		t.Errorf("the jailed fork's guest has mark %q (%v), want %q", got, err, "jailed")
	}
	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range r.Requests {
		if req.Status/100 != 2 {
			t.Errorf("%s %s answered %d: %s", req.Method, req.Path, req.Status, req.Fault)
		}
	}
	if err := d.Kill(ctx, h2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"memory", "vmstate"} {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing the fork's jail removed the saved %s", f)
		}
	}
}

func withConn(t *testing.T, ctx context.Context, d *firecracker.Driver, h *vmm.Handle, f func(context.Context, net.Conn) error) {
	t.Helper()
	conn, err := d.DialAgent(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := f(ctx, conn); err != nil {
		t.Fatal(err)
	}
}
