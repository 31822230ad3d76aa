//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"banger/internal/testutil/fixture"
)

// A kernel published to a registry is pulled by reference on a state that
// has no kernel, and a VM boots with it.
func TestKernelFromRegistry(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	k := fixture.DebianKernel(t)
	addr := fixtureRegistry(t, e)
	ref := addr + "/kernels/debian:cloud"
	out := e.ok("kernel", "publish", "deb-cloud", ref, "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules, "--version", "fixture", "--insecure")
	if !strings.Contains(out, "published kernel deb-cloud as "+addr+"/kernels/debian@sha256:") {
		t.Errorf("publish said %q", out)
	}
	if out := e.ok("kernel", "list"); strings.Contains(out, "deb-cloud") {
		t.Fatalf("publishing files stored a kernel locally:\n%s", out)
	}
	if out := e.ok("kernel", "list", "--available", addr+"/kernels/debian", "--insecure"); !strings.Contains(out, addr+"/kernels/debian:cloud") {
		t.Errorf("tags of the repository:\n%s", out)
	}
	e.ok("kernel", "pull", ref, "--insecure")
	if out := e.ok("kernel", "list"); !strings.Contains(out, "deb-cloud") || !strings.Contains(out, "fixture") {
		t.Fatalf("kernel list after the pull:\n%s", out)
	}
	e.ok("image", "register", "--name", "bb", "--rootfs", fixture.BusyboxSystemRootfs(t), "--kernel-ref", "deb-cloud")
	e.ok("vm", "create", "--name", "k", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	if got := strings.TrimSpace(e.ssh("k", "echo booted")); got != "booted" {
		t.Errorf("ssh into the vm booted with the pulled kernel: %q", got)
	}
}
