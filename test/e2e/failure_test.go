//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/disk"
	"banger/internal/ext4"
	"banger/internal/testutil/fixture"
)

// TestVMFailurePaths: a kernel that panics, a rootfs that is not ext4, a
// guest whose agent never answers. Each is a clear error and leaves
// nothing behind.
func TestVMFailurePaths(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon("--boot-timeout", "40s")
	k := fixture.DebianKernel(t)
	dir := t.TempDir()

	// An initrd of garbage: the kernel cannot load its virtio modules,
	// cannot mount root, and panics.
	junk := filepath.Join(dir, "junk.img")
	os.WriteFile(junk, []byte(strings.Repeat("not an initramfs ", 200)), 0o644)
	e.ok("image", "register", "--name", "panics", "--rootfs", fixture.BusyboxSystemRootfs(t), "--kernel", k.Vmlinuz, "--initrd", junk)
	_, errOut, code := e.run("vm", "create", "--name", "p", "--image", "panics", "--memory", "256", "--disk-size", "128M")
	if code == 0 || !strings.Contains(errOut, "stopped while booting") || !strings.Contains(strings.ToLower(errOut), "panic") {
		t.Errorf("panicking kernel: exit %d, stderr:\n%s\nwant an error quoting the console's panic", code, errOut)
	}
	assertNothingLeft(t, e, "p")

	// A rootfs that is not ext4 is refused at register time.
	notExt4 := filepath.Join(dir, "zeros.img")
	os.WriteFile(notExt4, make([]byte, 1<<20), 0o644)
	_, errOut, code = e.run("image", "register", "--name", "bad", "--rootfs", notExt4, "--kernel", k.Vmlinuz)
	if code == 0 || !strings.Contains(errOut, "not an ext4 filesystem") {
		t.Errorf("non-ext4 rootfs: exit %d, stderr %q", code, errOut)
	}

	// An image whose "systemd" never starts the agent: the create times
	// out with the console's tail.
	silent := filepath.Join(dir, "silent.ext4")
	if _, err := disk.Copy(context.Background(), fixture.BusyboxSystemRootfs(t), silent); err != nil {
		t.Fatal(err)
	}
	err := ext4.Inject(context.Background(), silent, []ext4.File{
		{Path: "/lib/systemd/systemd", Mode: 0o755, Data: []byte("#!/bin/sh\necho fake-systemd-sleeping\nexec sleep 100000\n")},
		{Path: "/sbin/init", Mode: fs.ModeSymlink | 0o777, Link: "/lib/systemd/systemd"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.ok("image", "register", "--name", "silent", "--rootfs", silent, "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
	_, errOut, code = e.run("vm", "create", "--name", "s", "--image", "silent", "--memory", "256", "--disk-size", "128M")
	if code == 0 || !strings.Contains(errOut, "did not answer within 40s") || !strings.Contains(errOut, "fake-systemd-sleeping") {
		t.Errorf("silent guest: exit %d, stderr:\n%s\nwant a timeout quoting the console", code, errOut)
	}
	assertNothingLeft(t, e, "s")
}

// TestOutOfAddresses fills a /29 (five guest addresses) and checks the
// sixth VM is refused with a clear error and leaves nothing behind.
func TestOutOfAddresses(t *testing.T) {
	e := newEnv(t, "cidr = \"172.16.0.0/29\"\ntap_pool_size = 5\n")
	e.startDaemon()
	e.registerBusybox("bb")
	for i := 1; i <= 5; i++ {
		e.ok("vm", "create", "--name", fmt.Sprintf("v%d", i), "--image", "bb", "--memory", "128", "--disk-size", "64M")
	}
	_, errOut, code := e.run("vm", "create", "--name", "v6", "--image", "bb", "--memory", "128", "--disk-size", "64M")
	if code == 0 || !strings.Contains(errOut, "172.16.0.0/29") {
		t.Errorf("sixth vm: exit %d, stderr %q; want an out-of-addresses error naming the cidr", code, errOut)
	}
	assertNothingLeft(t, e, "v6")
}

// assertNothingLeft checks that a VM whose create failed left no row,
// directory, lease, TAP, known_hosts line or process.
func assertNothingLeft(t *testing.T, e *env, name string) {
	t.Helper()
	if out, _, _ := e.run("vm", "list", "--json"); strings.Contains(out, `"name": "`+name+`"`) {
		t.Errorf("failed vm %s is still listed", name)
	}
	vms := filepath.Join(e.home, "state", "banger", "vms")
	ents, _ := os.ReadDir(vms)
	listed := jsonNames(e.ok("vm", "list", "--json"))
	if len(ents) != len(listed) {
		t.Errorf("%d vm directories for %d vms: a failed create left its disks", len(ents), len(listed))
	}
	rts, _ := os.ReadDir(filepath.Join(e.rt, "banger", "vm"))
	if len(rts) != len(listed) {
		t.Errorf("%d runtime dirs for %d vms", len(rts), len(listed))
	}
	if out, _ := e.inNS("pgrep", "-f", "banger-"+name+",").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("a qemu for %s is still running: %s", name, out)
	}
	e.assertNetworkFreed(name)
	// Nor under another name: every lease and TAP belongs to a listed VM.
	leases, err := e.openStore().Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if !slices.Contains(listed, l.VM) {
			t.Errorf("lease %s is held by %q, which is not a vm", l.Addr, l.VM)
		}
	}
	for _, a := range e.tapAssignments() {
		if !slices.Contains(listed, a.VM) {
			t.Errorf("tap %s is held by %q, which is not a vm", a.Tap, a.VM)
		}
	}
}

// TestCreateInterrupted: Ctrl-C while the guest boots ends the create
// with nothing left: no VM, disks, QEMU, lease or TAP; so does a daemon
// killed while it boots, at the daemon's next start.
func TestCreateInterrupted(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb") // the slower boot leaves time to interrupt it
	cmd := e.inNS(filepath.Join(binDir, "banger"), "vm", "create", "--name", "ic", "--image", "deb", "--memory", "512", "--disk-size", "512M")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the vm's qemu to start", 2*time.Minute, func() bool {
		out, _ := e.inNS("pgrep", "-f", "banger-ic,").CombinedOutput()
		return strings.TrimSpace(string(out)) != ""
	})
	time.Sleep(time.Second) // booting
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("interrupted vm create: %v, want exit status 130", err)
	}
	waitUntil(t, "the interrupted create to leave nothing", time.Minute, func() bool {
		out, _ := e.inNS("pgrep", "-f", "banger-ic,").CombinedOutput()
		return len(jsonNames(e.ok("vm", "list", "--json"))) == 0 && strings.TrimSpace(string(out)) == ""
	})
	assertNothingLeft(t, e, "ic")

	// The daemon killed -9 while the guest boots: its next start ends that
	// boot and removes the half-created VM.
	cmd = e.inNS(filepath.Join(binDir, "banger"), "vm", "create", "--name", "kc", "--image", "deb", "--memory", "512", "--disk-size", "512M")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the vm's qemu to start", 2*time.Minute, func() bool {
		out, _ := e.inNS("pgrep", "-f", "banger-kc,").CombinedOutput()
		return strings.TrimSpace(string(out)) != ""
	})
	time.Sleep(time.Second)
	e.killDaemon()
	if err := cmd.Wait(); err == nil {
		t.Error("vm create succeeded although its daemon was killed")
	}
	e.startDaemon()
	assertNothingLeft(t, e, "kc")
	if !strings.Contains(e.ok("events", "--vm", "kc"), "was being created when the daemon stopped") {
		t.Error("no event says why vm kc was removed")
	}

	// And the names are free again.
	e.ok("vm", "create", "--name", "ic", "--image", "deb", "--memory", "512", "--disk-size", "512M")
}
