package firecracker_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// A compromised Firecracker owns its chroot, so where the daemon expects
// the memory file it wrote it can leave a symbolic link to a host file,
// or a hard link to a file it can reach. The save must refuse it, leave
// no state behind, and change nothing of the file linked to.
func TestJailerSaveRefusesTamperedMemory(t *testing.T) {
	requiresRoot(t)
	for _, tc := range []struct {
		name string
		// tamper is fcstandin.Options.Tamper; canary is the file whose
		// owner and mode must not change.
		tamper func(spec vmm.Spec, canary string) string
		canary func(t *testing.T, spec vmm.Spec) string
		want   string
	}{
		{
			name:   "symlink",
			canary: func(t *testing.T, spec vmm.Spec) string { return canaryFile(t, t.TempDir()) },
			tamper: func(_ vmm.Spec, canary string) string { return "memory-symlink=" + canary },
			want:   "symbolic link",
		},
		{
			// The VM's own writable disk is the jail's user's, so even
			// with fs.protected_hardlinks the jail may link it.
			name:   "hard link",
			canary: func(t *testing.T, spec vmm.Spec) string { return spec.Disks[0].Path },
			tamper: func(spec vmm.Spec, _ string) string { return "memory-link=/drive-" + spec.Disks[0].ID },
			want:   "names",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(t)
			canary := tc.canary(t, spec)
			d := jailedDriver(t, fcstandin.Options{Tamper: tc.tamper(spec, canary)})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h := create(t, d, spec)
			t.Cleanup(func() { d.Kill(context.Background(), h) })
			if err := d.Start(ctx, h); err != nil {
				t.Fatal(err)
			}
			if err := d.Pause(ctx, h); err != nil {
				t.Fatal(err)
			}
			before := stat(t, canary)
			beforeOwner := owner(t, canary)
			dir := t.TempDir()
			_, err := d.SaveState(ctx, h, dir)
			t.Logf("SaveState: %v", err)
			if err == nil || !strings.Contains(err.Error(), "not a regular file Firecracker wrote") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SaveState with a tampered memory file: %v; want a refusal naming the %s", err, tc.want)
			}
			after := stat(t, canary)
			if o := owner(t, canary); o != beforeOwner || after.Mode() != before.Mode() {
				t.Errorf("%s after the save: uid:gid %v mode %v; was %v %v", canary, o, after.Mode(), beforeOwner, before.Mode())
			}
			if left := runtimeLeftovers(t, dir); len(left) != 0 {
				t.Errorf("the refused save left %v in the state dir", left)
			}
			jail := h.Sockets["jail"]
			for _, f := range []string{".memory.partial", ".vmstate.partial"} {
				if _, err := os.Lstat(filepath.Join(jail, f)); err == nil {
					t.Errorf("the refused save left %s in the chroot", f)
				}
			}
		})
	}
}

// A saved state the jail could have written is linked into a new chroot
// and made readable by the jail's group at a restore; a memory file that
// is a symbolic link would hand the jail the file it points to.
func TestJailerRestoreRefusesSymlinkedState(t *testing.T) {
	requiresRoot(t)
	d := jailedDriver(t, fcstandin.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := create(t, d, newSpec(t))
	dir, st := runAndSave(ctx, t, d, h)
	canary := canaryFile(t, t.TempDir())
	mem := filepath.Join(dir, st.Files[firecracker.RoleMemory])
	if err := os.Remove(mem); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(canary, mem); err != nil {
		t.Fatal(err)
	}
	h2, err := d.Restore(ctx, forkSpec(t), st)
	t.Logf("Restore: %v", err)
	if err == nil {
		d.Kill(context.Background(), h2)
	}
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), mem) {
		t.Errorf("Restore of a state whose memory is a symlink: %v; want a refusal naming %s", err, mem)
	}
	fi := stat(t, canary)
	if o := owner(t, canary); o != [2]int{canaryUID, canaryGID} || fi.Mode().Perm() != 0o644 {
		t.Errorf("the symlink's target after the restore: uid:gid %v mode %v; want %d:%d 0644", o, fi.Mode().Perm(), canaryUID, canaryGID)
	}
}

const canaryUID, canaryGID = 1234, 1235

// canaryFile is a host file outside any jail, owned by neither bangerd
// nor the jail: uid 1234, gid 1235, mode 0644.
func canaryFile(t *testing.T, dir string) string {
	t.Helper()
	p := writeFile(t, filepath.Join(dir, "canary"), 0o644)
	if err := os.Chown(p, canaryUID, canaryGID); err != nil {
		t.Fatal(err)
	}
	return p
}

// jailedDriver is a driver running the stand-in configured by opts under
// the fake jailer, as uid 4242 and gid 4243.
func jailedDriver(t *testing.T, opts fcstandin.Options) *firecracker.Driver {
	t.Helper()
	base, err := os.MkdirTemp("", "bgj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	jailer, err := fcstandin.InstallJailer(t.TempDir(), fcstandin.JailerOptions{CgroupRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return firecracker.New(firecracker.Options{
		Binary: standInBinary(t, opts),
		Jailer: &firecracker.Jailer{Binary: jailer, UID: 4242, GID: 4243, ChrootBase: base},
	})
}

// Metrics and TrimLogs read and punch holes in the metrics file and the
// log in the chroot; a link the jail put in their place must not make
// them read or cut the file it points to.
func TestJailerMetricsAndLogRefuseLinks(t *testing.T) {
	requiresRoot(t)
	d := jailedDriver(t, fcstandin.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := create(t, d, newSpec(t))
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	jail := h.Sockets["jail"]
	plant := func(name string, content []byte) string {
		t.Helper()
		canary := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(canary, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(jail, name)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(canary, filepath.Join(jail, name)); err != nil {
			t.Fatal(err)
		}
		return canary
	}
	unchanged := func(canary string, want []byte) {
		t.Helper()
		if got, err := os.ReadFile(canary); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed behind the link in the chroot (%v)", canary, err)
		}
	}

	lines := bytes.Repeat([]byte(`{"block_rootfs":{"read_bytes":1}}`+"\n"), 1000)
	metrics := plant("metrics.json", lines)
	_, err := d.Metrics(ctx, h)
	t.Logf("Metrics: %v", err)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Metrics with metrics.json a symlink: %v; want a refusal", err)
	}
	unchanged(metrics, lines)

	big := bytes.Repeat([]byte("guest wrote this to the console\n"), (vmm.LogLimit+vmm.LogKeep)/32)
	log := plant("firecracker.log", big)
	err = d.TrimLogs(ctx, h)
	t.Logf("TrimLogs: %v", err)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("TrimLogs with firecracker.log a symlink: %v; want a refusal", err)
	}
	unchanged(log, big)
}

// The API and vsock sockets are in the chroot: a link the jail put in
// their place must not redirect bangerd's requests to another socket on
// the host (another VM's API, say).
func TestJailerSocketsRefuseLinks(t *testing.T) {
	requiresRoot(t)
	d := jailedDriver(t, fcstandin.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := create(t, d, newSpec(t))
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	decoy := filepath.Join(t.TempDir(), "decoy.sock")
	ln, err := net.Listen("unix", decoy)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	for _, name := range []string{"api.sock", "vsock.sock"} {
		p := filepath.Join(h.Sockets["jail"], name)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(decoy, p); err != nil {
			t.Fatal(err)
		}
	}
	err = d.Pause(ctx, h)
	t.Logf("Pause: %v", err)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Pause with api.sock a symlink: %v; want a refusal", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	conn, err := d.DialAgent(dctx, h)
	if err == nil {
		conn.Close()
	}
	t.Logf("DialAgent: %v", err)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("DialAgent with vsock.sock a symlink: %v; want a refusal", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the socket behind the links got %d connections, want none", n)
	}
}

// runAndSave starts, pauses and saves the VM behind h into a new
// directory, then kills it.
func runAndSave(ctx context.Context, t *testing.T, d *firecracker.Driver, h *vmm.Handle) (string, vmm.State) {
	t.Helper()
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, h); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := d.SaveState(ctx, h, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	return dir, st
}
