package firecracker_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// TestJailerKeepsSharedFiles: the chroot holds hard links, so what the
// jail's user may do to a link it may do to the original. After a create
// and a restore under the jailer, the shared inputs (kernel, initrd, a
// read-only disk, the saved state a template is made of) keep bangerd's
// user as owner, are readable by the jail's group and writable by no one
// in the jail, and are not readable by others; the VM's own writable
// disks are the jail's. A kernel an earlier banger gave to the jail's
// user is taken back.
func TestJailerKeepsSharedFiles(t *testing.T) {
	requiresRoot(t)
	base, err := os.MkdirTemp("", "bgj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	jailer, err := fcstandin.InstallJailer(t.TempDir(), fcstandin.JailerOptions{CgroupRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const uid, gid = 4242, 4243
	d := firecracker.New(firecracker.Options{
		Binary: standInBinary(t, fcstandin.Options{}),
		Jailer: &firecracker.Jailer{Binary: jailer, UID: uid, GID: gid, ChrootBase: base},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	spec := newSpec(t)
	shared := t.TempDir()
	spec.Initrd = writeFile(t, filepath.Join(shared, "initrd"), 0o644)
	spec.Disks = append(spec.Disks, vmm.Disk{ID: "modules", Path: writeFile(t, filepath.Join(shared, "modules.ext4"), 0o644), ReadOnly: true})
	// As the jailer left it before: the kernel owned by the jail's user.
	if err := os.Chown(spec.Kernel, uid, gid); err != nil {
		t.Fatal(err)
	}
	me := os.Geteuid()

	h := create(t, d, spec)
	for _, p := range []string{spec.Kernel, spec.Initrd, spec.Disks[2].Path} {
		checkShared(t, p, me, gid)
	}
	for _, p := range []string{spec.Disks[0].Path, spec.Disks[1].Path} {
		if o := owner(t, p); o[0] != uid {
			t.Errorf("the vm's own disk %s is owned by uid %d, want the jail's %d", filepath.Base(p), o[0], uid)
		}
	}
	dir, st := runAndSave(ctx, t, d, h)
	state := []string{filepath.Join(dir, st.Files[firecracker.RoleMemory]), filepath.Join(dir, st.Files[firecracker.RoleDevice])}
	for _, p := range state {
		fi := stat(t, p)
		if o := owner(t, p); o[0] != me || fi.Mode().Perm() != 0o600 {
			t.Errorf("saved %s: uid %d mode %v, want bangerd's uid %d and 0600", filepath.Base(p), o[0], fi.Mode().Perm(), me)
		}
	}

	fork := forkSpec(t)
	fork.Disks = append(fork.Disks, spec.Disks[2])
	h2, err := d.Restore(ctx, fork, st)
	if err != nil {
		t.Fatalf("Restore under the jailer: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h2) })
	if err := d.Resume(ctx, h2); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(state, spec.Kernel) {
		checkShared(t, p, me, gid)
	}
	if o := owner(t, fork.Disks[0].Path); o[0] != uid {
		t.Errorf("the fork's own root disk is owned by uid %d, want the jail's %d", o[0], uid)
	}
}

// checkShared fails unless path is owned by uid, readable by the jail's
// group, writable by neither the group nor others, and hidden from others.
func checkShared(t *testing.T, path string, uid, gid int) {
	t.Helper()
	fi, o := stat(t, path), owner(t, path)
	perm := fi.Mode().Perm()
	if o[0] != uid || o[1] != gid || perm&0o070 != 0o040 || perm&0o007 != 0 {
		t.Errorf("shared %s: uid:gid %d:%d mode %v; want %d:%d, group read only, nothing for others", filepath.Base(path), o[0], o[1], perm, uid, gid)
	}
}

func stat(t *testing.T, path string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func owner(t *testing.T, path string) [2]int {
	st := stat(t, path).Sys().(*syscall.Stat_t)
	return [2]int{int(st.Uid), int(st.Gid)}
}

func writeFile(t *testing.T, path string, mode fs.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("stand-in "+filepath.Base(path)), mode); err != nil {
		t.Fatal(err)
	}
	return path
}
