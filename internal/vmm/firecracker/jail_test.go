package firecracker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// requiresRoot skips tests that chroot and change user, as the jailer does.
func requiresRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the jailer chroots and runs Firecracker as another user")
	}
}

// TestJailerLifecycle runs a VM under the fake jailer: Firecracker (the
// stand-in) is chrooted into its jail as the jail's user and sees only
// paths inside it; the agent, metrics and Kill work through the jail,
// and Kill removes the jail and the cgroup.
func TestJailerLifecycle(t *testing.T) {
	requiresRoot(t)
	base, err := os.MkdirTemp("", "bgj") // short: socket paths are in the jail
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	cgroups := t.TempDir()
	jailer, err := fcstandin.InstallJailer(t.TempDir(), fcstandin.JailerOptions{Record: rec, CgroupRoot: cgroups})
	if err != nil {
		t.Fatal(err)
	}
	const uid, gid = 4242, 4243
	d := firecracker.New(firecracker.Options{
		Binary: standInBinary(t, fcstandin.Options{Record: rec}),
		Jailer: &firecracker.Jailer{
			Binary: jailer, UID: uid, GID: gid, ChrootBase: base, CgroupRoot: cgroups,
			ParentCgroup: "banger", Cgroups: []string{"memory.max=1073741824"}, ResourceLimits: []string{"no-file=1024"},
		},
	})
	spec := newSpec(t)
	spec.Initrd = spec.Kernel // two links into the jail from one file
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := create(t, d, spec)

	jail := h.Sockets["jail"]
	if !strings.HasPrefix(jail, base+"/firecracker/") || h.Sockets["api"] != jail+"/api.sock" {
		t.Fatalf("handle = %+v, want sockets in a jail under %s", h.Sockets, base)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", h.PID)); err != nil || root != jail {
		t.Errorf("firecracker's root = %q, %v; want the jail %s", root, err, jail)
	}
	if got := procIDs(t, h.PID); got != [2]int{uid, gid} {
		t.Errorf("firecracker runs as uid:gid %v, want %d:%d", got, uid, gid)
	}

	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Adopt(ctx, h); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	conn, err := d.DialAgent(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, conn); err != nil {
		t.Fatalf("agent through the jail: %v", err)
	}
	m, err := d.Metrics(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, "jailed", m, 1)

	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkJailedRequests(t, r)
	if len(r.Jailer) != 1 {
		t.Fatalf("jailer runs = %+v, want one", r.Jailer)
	}
	j := r.Jailer[0]
	want := fcstandin.JailerRun{
		PID: h.PID, ID: filepath.Base(filepath.Dir(jail)), ExecFile: j.ExecFile, UID: uid, GID: gid, Chroot: jail,
		CgroupVersion: 2, ParentCgroup: "banger", Cgroups: []string{"memory.max=1073741824"}, ResourceLimits: []string{"no-file=1024"},
		Args: []string{"--api-sock", "/api.sock"},
	}
	if diff := cmp.Diff(want, j); diff != "" {
		t.Errorf("jailer run (-want +got):\n%s", diff)
	}
	cg := filepath.Join(cgroups, "banger", j.ID)
	if _, err := os.Stat(cg); err != nil {
		t.Errorf("the jailer made no cgroup: %v", err)
	}

	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(jail), cg} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Kill: %v", p, err)
		}
	}
	if left := runtimeLeftovers(t, spec.RuntimeDir); len(left) > 0 {
		t.Errorf("runtime dir after Kill holds %v", left)
	}
	for _, p := range append([]string{spec.Kernel}, spec.Disks[0].Path, spec.Disks[1].Path) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("removing the jail removed %s: %v", p, err)
		}
	}
}

// checkJailedRequests checks Firecracker was given only paths inside the
// jail.
func checkJailedRequests(t *testing.T, r fcstandin.Record) {
	t.Helper()
	for _, req := range r.Requests {
		if req.Status/100 != 2 {
			t.Errorf("%s %s answered %d: %s", req.Method, req.Path, req.Status, req.Fault)
		}
	}
	var boot, root string
	for _, req := range r.Requests {
		body := string(req.Body)
		switch req.Path {
		case "/boot-source":
			boot = body
		case "/drives/rootfs":
			root = body
		}
	}
	if !strings.Contains(boot, `"kernel_image_path":"/vmlinux"`) || !strings.Contains(boot, `"initrd_path":"/initrd"`) {
		t.Errorf("boot source %s, want paths inside the jail", boot)
	}
	if !strings.Contains(root, `"path_on_host":"/drive-rootfs"`) {
		t.Errorf("root drive %s, want a path inside the jail", root)
	}
}

// procIDs are the real uid and gid of pid.
func procIDs(t *testing.T, pid int) [2]int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ids [2]int
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "Uid:" || f[0] == "Gid:") {
			var n int
			fmt.Sscan(f[1], &n)
			ids[map[string]int{"Uid:": 0, "Gid:": 1}[f[0]]] = n
		}
	}
	return ids
}

// TestJailerRefusesBadArgs: the fake jailer checks its command line as
// the real one does, so a driver bug there fails Create.
func TestJailerRefusesBadArgs(t *testing.T) {
	requiresRoot(t)
	base, err := os.MkdirTemp("", "bgj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	jailer, err := fcstandin.InstallJailer(t.TempDir(), fcstandin.JailerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := firecracker.New(firecracker.Options{
		Binary: standInBinary(t, fcstandin.Options{}),
		Jailer: &firecracker.Jailer{Binary: jailer, UID: 4242, GID: 4242, ChrootBase: base, NetNS: "/nonexistent/netns"},
	})
	spec := newSpec(t)
	_, err = d.Create(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "Failed to open netns /nonexistent/netns") {
		t.Errorf("Create with a missing netns = %v, want the jailer's refusal", err)
	}
	if left := runtimeLeftovers(t, spec.RuntimeDir); len(left) > 0 {
		t.Errorf("runtime dir holds %v", left)
	}
}

// TestJailerNeedsRoot: a daemon that is not root gets told so rather than
// the jailer's own failure.
func TestJailerNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root; the refusal is for a daemon that is not")
	}
	d := firecracker.New(firecracker.Options{
		Binary: standInBinary(t, fcstandin.Options{}),
		Jailer: &firecracker.Jailer{Binary: "/nonexistent/jailer", UID: 4242, GID: 4242},
	})
	_, err := d.Create(context.Background(), newSpec(t))
	if err == nil || !strings.Contains(err.Error(), "the jailer needs root") {
		t.Errorf("Create under the jailer as uid %d = %v, want a refusal naming root", os.Geteuid(), err)
	}
}
