//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/testutil/fixture"
)

// TestFirstRunOffline is the README's main job on a fresh host without
// internet access: nothing registered, no registry reachable, only the
// Debian mirror (through a proxy). 'banger vm run' makes the default
// image itself (the Debian cloud kernel with apt-get, a rootfs with
// debootstrap as the daemon is root), boots it and puts the checkout in
// /root/repo; a second run reuses the image.
func TestFirstRunOffline(t *testing.T) {
	fixture.Require(t, "debootstrap", "apt-get", "dpkg-deb", "busybox", "chroot")
	e := newEnv(t, "")
	proxy := startAptProxy(t, e)
	e.vars = append(e.vars, "http_proxy="+proxy.URL, "https_proxy="+proxy.URL, "HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL)
	e.startDaemon()
	repo := mixedRepo(t)

	run := func(name string) (api.VM, time.Duration) {
		t.Helper()
		t0 := time.Now()
		e.ok("vm", "run", repo.dir, "--name", name)
		d := time.Since(t0)
		return e.vm(name), d
	}
	vm1, d1 := run("first")
	t.Logf("first vm run from an empty state (default image made with debootstrap through the mirror proxy): %s; proxy served %d requests, refused %d",
		d1.Round(time.Second), proxy.served.Load(), proxy.refused.Load())
	if proxy.refused.Load() == 0 {
		t.Error("the registry probe never reached the proxy; the offline path was not chosen by the probe")
	}
	var im api.Image
	if err := json.Unmarshal([]byte(e.ok("image", "show", "default", "--json")), &im); err != nil {
		t.Fatal(err)
	}
	if im.Source != "debootstrap" || !im.Managed || im.WorkSeed == "" {
		t.Errorf("default image = %+v; want a managed debootstrap image with a work-seed", im)
	}
	if vm1.Image != "default" {
		t.Errorf("vm image = %q, want default", vm1.Image)
	}
	if got := strings.TrimSpace(e.ssh("first", "cd /root/repo && git status --porcelain | sort && systemctl is-system-running || true")); !strings.Contains(got, "?? notes/") || !strings.Contains(got, "D src/old.go") || !strings.Contains(got, "running") {
		t.Errorf("guest checkout status:\n%s", got)
	}
	if got := strings.TrimSpace(e.ssh("first", "test -f /etc/ssh/sshd_config.d/banger.conf && echo configured; test -f /etc/systemd/system/opencode.service && echo service")); got != "configured\nservice" {
		t.Errorf("devbox configuration in the default image: %q", got)
	}

	served := proxy.served.Load()
	_, d2 := run("second")
	t.Logf("second vm run (default image cached): %s (first %s)", d2.Round(time.Second), d1.Round(time.Second))
	if proxy.served.Load() != served {
		t.Errorf("the second run fetched %d more files from the mirror; want the image reused", proxy.served.Load()-served)
	}
	if names := jsonNames(e.ok("image", "list", "--json")); strings.Join(names, ",") != "default" {
		t.Errorf("images = %v, want only default", names)
	}
	if left, _ := filepath.Glob(filepath.Join(e.home, "state", "banger", "images", ".staging-*")); len(left) != 0 {
		t.Errorf("staging left: %v", left)
	}
}
