//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
)

// TestPullCreateSSH is the path users take: an image from a registry is
// pulled, booted and reached over SSH. The registry runs in the test: one
// in-memory registry served on the host's loopback (for the push) and on
// the namespace's loopback (for the daemon's pull). A VM from a pulled
// image gets no host credentials until 'vm auth sync' copies them in.
func TestPullCreateSSH(t *testing.T) {
	e := newEnv(t, "")
	creds := writeHostCreds(t, e.home)
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
	checkAuthSync(t, e, "pulled", creds)
}

// writeHostCreds puts a credential file of each coding agent in home and
// returns their contents by path relative to home.
func writeHostCreds(t *testing.T, home string) map[string]string {
	t.Helper()
	creds := map[string]string{
		".local/share/opencode/auth.json": `{"opencode":"e2e-open"}`,
		".claude/.credentials.json":       `{"claude":"e2e-claude"}`,
		".pi/agent/auth.json":             `{"pi":"e2e-pi"}`,
	}
	for rel, content := range creds {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return creds
}

// checkAuthSync: vm, whose auth sync is off, holds none of the host's
// credential files; 'vm auth sync' copies each in, mode 0600, without a
// restart.
func checkAuthSync(t *testing.T, e *env, vm string, creds map[string]string) {
	t.Helper()
	if out := e.ok("vm", "show", vm); !regexp.MustCompile(`auth sync:\s+off`).MatchString(out) {
		t.Errorf("vm show of a VM from a pulled image does not say auth sync is off:\n%s", out)
	}
	for rel := range creds {
		if got := strings.TrimSpace(e.ssh(vm, "test -e /root/"+rel+" && echo present || echo absent")); got != "absent" {
			t.Errorf("/root/%s in a VM with auth sync off: %s", rel, got)
		}
	}
	pid := e.ok("vm", "show", vm, "--json")
	e.ok("vm", "auth", "sync", vm)
	for rel, want := range creds {
		got := strings.TrimSpace(e.ssh(vm, "stat -c %a /root/"+rel+"; cat /root/"+rel))
		if got != "600\n"+want {
			t.Errorf("/root/%s after vm auth sync: %q, want mode 600 and %q", rel, got, want)
		}
	}
	if after := e.ok("vm", "show", vm, "--json"); pidOf(after) != pidOf(pid) {
		t.Errorf("vm auth sync restarted the VM (pid %s -> %s)", pidOf(pid), pidOf(after))
	}
	if out := e.ok("events", "--vm", vm); !strings.Contains(out, "copied .local/share/opencode/auth.json") || strings.Contains(out, "e2e-") {
		t.Errorf("events after vm auth sync: want the files named, never their content:\n%s", out)
	}
}

func pidOf(vmJSON string) string {
	m := regexp.MustCompile(`"pid":\s*(\d+)`).FindStringSubmatch(vmJSON)
	if m == nil {
		return ""
	}
	return m[1]
}
