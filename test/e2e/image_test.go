//go:build e2e

package e2e

import (
	"encoding/json"
	"testing"

	"banger/internal/testutil/fixture"
)

// registerDebian registers the Debian fixture (stock cloud kernel, our
// initramfs loading its virtio modules, debootstrap rootfs) as name.
func (e *env) registerDebian(name string) {
	e.t.Helper()
	k := fixture.DebianKernel(e.t)
	root := fixture.Ext4FromDir(e.t, fixture.DebianRootfs(e.t), 1536)
	e.ok("image", "register", "--name", name, "--rootfs", root, "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
}

func jsonNames(out string) []string {
	var items []struct {
		Name string `json:"name"`
	}
	json.Unmarshal([]byte(out), &items)
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	return names
}

var _ = testing.Verbose

// registerBusybox registers the busybox-only image (agent as PID 1,
// built-in SSH): the quickest guest to boot.
func (e *env) registerBusybox(name string) {
	e.t.Helper()
	k := fixture.DebianKernel(e.t)
	e.ok("image", "register", "--name", name, "--rootfs", fixture.BusyboxSystemRootfs(e.t), "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
}
