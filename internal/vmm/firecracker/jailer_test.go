package firecracker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

func TestJailerArgv(t *testing.T) {
	spec := testSpec()
	j := &Jailer{
		Binary: "/usr/bin/jailer", UID: 1234, GID: 1235, ChrootBase: "/srv/jail",
		ParentCgroup: "banger", Cgroups: []string{"memory.max=1073741824", "cpu.max=50000 100000"},
		NetNS: "/var/run/netns/banger", ResourceLimits: []string{"no-file=4096"},
	}
	l := j.jailLayout(spec, "/opt/fc/firecracker")
	id := instanceID(spec)
	want := []string{"/usr/bin/jailer",
		"--id", id, "--exec-file", "/opt/fc/firecracker", "--uid", "1234", "--gid", "1235",
		"--chroot-base-dir", "/srv/jail", "--cgroup-version", "2", "--parent-cgroup", "banger",
		"--cgroup", "memory.max=1073741824", "--cgroup", "cpu.max=50000 100000",
		"--resource-limit", "no-file=4096", "--netns", "/var/run/netns/banger",
		"--", "--api-sock", "/api.sock",
	}
	if diff := cmp.Diff(want, j.argv(spec, "/opt/fc/firecracker", l)); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	root := "/srv/jail/firecracker/" + id + "/root"
	if l.jailRoot != root || l.api != root+"/api.sock" || l.vsock != root+"/vsock.sock" {
		t.Errorf("host paths = %s %s %s, want under %s", l.jailRoot, l.api, l.vsock, root)
	}
	wantFC := fcPaths{api: "/api.sock", vsock: "/vsock.sock", log: "/firecracker.log", metrics: "/metrics.json",
		kernel: "/vmlinux", initrd: "/initrd", disks: []string{"/drive-rootfs", "/drive-work"}}
	if diff := cmp.Diff(wantFC, l.fc, cmp.AllowUnexported(fcPaths{})); diff != "" {
		t.Errorf("paths inside the jail (-want +got):\n%s", diff)
	}
	if got, want := l.jailCgroup, []string{"/sys/fs/cgroup/banger/" + id}; !cmp.Equal(got, want) {
		t.Errorf("cgroup dirs = %v, want %v", got, want)
	}
	// The boot requests name the paths inside the jail.
	for _, c := range bootPlan(spec, l, 3) {
		if d, ok := c.body.(Drive); ok && !strings.HasPrefix(d.PathOnHost, "/drive-") {
			t.Errorf("drive %s path %s is a host path", d.DriveID, d.PathOnHost)
		}
	}
}

func TestJailerCgroupV1Dirs(t *testing.T) {
	j := &Jailer{CgroupVersion: 1, CgroupRoot: "/cg", Cgroups: []string{"cpuset.cpus=0", "cpuset.mems=0", "memory.limit_in_bytes=1"}}
	got := j.cgroupDirs("/usr/bin/firecracker", "vm1")
	want := []string{"/cg/cpuset/firecracker/vm1", "/cg/memory/firecracker/vm1"}
	if !cmp.Equal(got, want) {
		t.Errorf("cgroupDirs = %v, want %v", got, want)
	}
}

func TestJailerCheck(t *testing.T) {
	for name, j := range map[string]Jailer{
		"no binary":   {UID: 1, GID: 1},
		"root uid":    {Binary: "/j", UID: 0, GID: 1},
		"bad version": {Binary: "/j", UID: 1, GID: 1, CgroupVersion: 3},
		"bad limit":   {Binary: "/j", UID: 1, GID: 1, Cgroups: []string{"memory.max"}},
	} {
		if err := j.check(); err == nil {
			t.Errorf("%s: check passed", name)
		}
	}
	if err := (&Jailer{Binary: "/j", UID: 1, GID: 1}).check(); err != nil {
		t.Errorf("valid jailer: %v", err)
	}
}

// jailIDs are the uid and gid the test jail is given: another user's
// when running as root, else our own (all chown allows).
func jailIDs() (int, int) {
	if os.Getuid() == 0 {
		return 4242, 4243
	}
	return os.Getuid(), os.Getgid()
}

func TestPrepareJail(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec()
	spec.RuntimeDir = filepath.Join(dir, "rt")
	spec.Kernel = filepath.Join(dir, "vmlinux")
	spec.Initrd = filepath.Join(dir, "initrd")
	for i := range spec.Disks {
		spec.Disks[i].Path = filepath.Join(dir, spec.Disks[i].ID+".ext4")
	}
	for _, p := range []string{spec.Kernel, spec.Initrd, spec.Disks[0].Path, spec.Disks[1].Path} {
		os.WriteFile(p, []byte(p), 0o600)
	}
	uid, gid := jailIDs()
	j := &Jailer{Binary: "/usr/bin/jailer", UID: uid, GID: gid, ChrootBase: filepath.Join(dir, "jail")}
	l := j.jailLayout(spec, "/usr/bin/firecracker")
	if err := j.prepareJail(spec, l); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"vmlinux": spec.Kernel, "initrd": spec.Initrd,
		"drive-rootfs": spec.Disks[0].Path, "drive-work": spec.Disks[1].Path,
	}
	for name, src := range links {
		in, err := os.Stat(filepath.Join(l.jailRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := os.Stat(src)
		if !os.SameFile(in, orig) {
			t.Errorf("%s in the jail is not a hard link to %s", name, src)
		}
	}
	// The VM's own writable disk and its files are the jail's; the
	// kernel, initrd and the read-only disk stay ours, readable by the
	// jail's group.
	me := os.Geteuid()
	for name, want := range map[string][3]int{
		"": {uid, gid, -1}, "drive-rootfs": {uid, gid, -1}, "firecracker.log": {uid, gid, -1}, "metrics.json": {uid, gid, -1},
		"vmlinux": {me, gid, 0o640}, "initrd": {me, gid, 0o640}, "drive-work": {me, gid, 0o640},
	} {
		fi, err := os.Stat(filepath.Join(l.jailRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != want[0] || int(st.Gid) != want[1] {
			t.Errorf("%q owned by %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
		}
		if want[2] >= 0 && int(fi.Mode().Perm()) != want[2] {
			t.Errorf("%q has mode %v, want %v", name, fi.Mode().Perm(), os.FileMode(want[2]))
		}
	}
	// The jail goes with the VM's files; the originals stay.
	l.removeFiles()
	if _, err := os.Stat(filepath.Dir(l.jailRoot)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jail dir left after removeFiles: %v", err)
	}
	if _, err := os.Stat(spec.Disks[0].Path); err != nil {
		t.Errorf("removing the jail removed the disk: %v", err)
	}
}

// TestPrepareJailSharedSource: one file linked into the jail under two
// names (a kernel that is also the initrd, one image as two disks) gets
// both links; keyed by source, one of them used to be lost.
func TestPrepareJailSharedSource(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec()
	spec.RuntimeDir = filepath.Join(dir, "rt")
	spec.Kernel = filepath.Join(dir, "vmlinux")
	spec.Initrd = spec.Kernel
	img := filepath.Join(dir, "disk.ext4")
	spec.Disks[0].Path, spec.Disks[1].Path = img, img
	for _, p := range []string{spec.Kernel, img} {
		os.WriteFile(p, []byte(p), 0o600)
	}
	uid, gid := jailIDs()
	j := &Jailer{Binary: "/usr/bin/jailer", UID: uid, GID: gid, ChrootBase: filepath.Join(dir, "jail")}
	l := j.jailLayout(spec, "/usr/bin/firecracker")
	if err := j.prepareJail(spec, l); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"vmlinux": spec.Kernel, "initrd": spec.Kernel, "drive-rootfs": img, "drive-work": img} {
		in, err := os.Stat(filepath.Join(l.jailRoot, name))
		if err != nil {
			t.Errorf("%s missing from the jail: %v", name, err)
			continue
		}
		if orig, _ := os.Stat(src); !os.SameFile(in, orig) {
			t.Errorf("%s in the jail is not a hard link to %s", name, src)
		}
	}
}

// TestPrepareJailAcrossFilesystems: hard links cannot cross filesystems;
// the error says where the chroot must go.
func TestPrepareJailAcrossFilesystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "bgjail")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(shm)
	dir := t.TempDir()
	var a, b syscall.Stat_t
	if syscall.Stat(shm, &a) != nil || syscall.Stat(dir, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm and the temp dir are one filesystem")
	}
	spec := vmm.Spec{Name: "x", RuntimeDir: filepath.Join(dir, "rt"), Kernel: filepath.Join(dir, "vmlinux")}
	os.WriteFile(spec.Kernel, nil, 0o600)
	uid, gid := jailIDs()
	j := &Jailer{Binary: "/j", UID: uid, GID: gid, ChrootBase: shm}
	err = j.prepareJail(spec, j.jailLayout(spec, "/usr/bin/firecracker"))
	if err == nil || !strings.Contains(err.Error(), "same filesystem") {
		t.Errorf("prepareJail across filesystems = %v, want advice about the filesystem", err)
	}
}
