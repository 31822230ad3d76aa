//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
)

// TestPullCreateSSH is the path users take: an image from a registry is
// pulled, booted and reached over SSH. The registry runs in the test: one
// in-memory registry served on the host's loopback (for the push) and on
// the namespace's loopback (for the daemon's pull).
func TestPullCreateSSH(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	k := fixture.DebianKernel(t)
	ref := pushDebianFixture(t, e)

	t0 := time.Now()
	e.ok("image", "pull", ref.String(), "--insecure", "--name", "deb", "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
	t.Logf("image pull: %s", time.Since(t0).Round(100*time.Millisecond))
	if out := e.ok("image", "pull", ref.String(), "--insecure", "--name", "deb", "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules); !strings.Contains(out, "up to date") {
		t.Errorf("second pull of the same digest: %q, want it to say the image is up to date", out)
	}
	e.ok("vm", "create", "--name", "pulled", "--image", "deb", "--memory", "512", "--disk-size", "1G")
	if got := strings.TrimSpace(e.ssh("pulled", "stat -c %U:%G /usr/bin/sudo /etc/shadow 2>/dev/null || stat -c %U:%G /etc/shadow")); !strings.Contains(got, "root:shadow") {
		t.Errorf("ownership in the pulled image: %q, want /etc/shadow root:shadow", got)
	}
	if got := strings.TrimSpace(e.ssh("pulled", "git --version")); !strings.HasPrefix(got, "git version") {
		t.Errorf("git in the pulled image: %q", got)
	}
}
