//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/testutil/fixture"
)

// TestImageBuild builds an image from a base pulled from the fixture
// registry with a script installing a local package (no network), boots
// it, then checks that a failing build leaves nothing and that the same
// inputs are served from the step cache.
func TestImageBuild(t *testing.T) {
	fixture.Require(t, "dpkg-deb")
	e := newEnv(t, "")
	e.startDaemon()
	k := fixture.DebianKernel(t)
	ref := pushDebianFixture(t, e)
	e.ok("image", "pull", ref.String(), "--insecure", "--name", "base", "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)

	dir := t.TempDir()
	deb := makeDeb(t, dir)
	install := writeScript(t, dir, "install.sh", "dpkg -i "+filepath.Base(deb)+"\nbanger-hello\necho tool-config > /root/.hello-seed\n")
	fail := writeScript(t, dir, "fail.sh", "echo about to fail\nexit 3\n")

	build := func(name string, scripts ...string) (api.ImageBuild, time.Duration) {
		t.Helper()
		args := []string{"image", "build", "--name", name, "--from-image", "base", "--no-devbox", "--file", deb, "--json"}
		for _, s := range scripts {
			args = append(args, "--script", s)
		}
		t0 := time.Now()
		var out api.ImageBuild
		if err := json.Unmarshal([]byte(e.ok(args...)), &out); err != nil {
			t.Fatal(err)
		}
		return out, time.Since(t0)
	}

	first, d1 := build("hello", install)
	if len(first.Steps) != 1 || first.Steps[0].Cached {
		t.Errorf("first build steps = %+v; want one step, run", first.Steps)
	}
	t.Logf("image build (one step, builder vm boot + dpkg -i + shutdown): %s", d1.Round(100*time.Millisecond))

	e.ok("vm", "create", "--name", "h1", "--image", "hello", "--memory", "512", "--disk-size", "1G")
	if got := strings.TrimSpace(e.ssh("h1", "banger-hello")); got != "hello from banger-hello" {
		t.Errorf("banger-hello in a vm of the built image: %q", got)
	}
	if got := strings.TrimSpace(e.ssh("h1", "cat /root/.hello-seed; ls /var/tmp/banger-build 2>&1 || true")); !strings.Contains(got, "tool-config") || !strings.Contains(got, "No such file") {
		t.Errorf("work-seed and build dir in the built image: %q; want the /root file kept and the build dir gone", got)
	}
	// The work-seed is stored shrunk, so --disk-size decides /root's size.
	if mib, err := strconv.Atoi(strings.TrimSpace(e.ssh("h1", "df -m --output=size /root | tail -n1"))); err != nil || mib > 1024 || mib < 800 {
		t.Errorf("/root of a vm made with --disk-size 1G is %d MiB (%v)", mib, err)
	}
	e.ok("vm", "delete", "h1")

	// A failing step: no image, no builder VM, no staging left.
	out, errOut, code := e.run("image", "build", "--name", "broken", "--from-image", "base", "--no-devbox", "--file", deb, "--script", install, "--script", fail)
	if code == 0 {
		t.Fatalf("a build whose script exits 3 succeeded: %s", out)
	}
	if !strings.Contains(errOut, "fail.sh failed") || !strings.Contains(errOut, "about to fail") || !strings.Contains(errOut, "exit") {
		t.Errorf("failed build error = %q; want the step, its exit and its last lines", errOut)
	}
	if names := jsonNames(e.ok("image", "list", "--json")); strings.Contains(strings.Join(names, ","), "broken") {
		t.Errorf("images after a failed build: %v", names)
	}
	if names := jsonNames(e.ok("vm", "list", "--json")); len(names) != 0 {
		t.Errorf("vms after a failed build: %v; want the builder gone", names)
	}
	if left, _ := filepath.Glob(filepath.Join(e.home, "state", "banger", "images", ".staging-*")); len(left) != 0 {
		t.Errorf("staging left after a failed build: %v", left)
	}
	e.ok("vm", "create", "--name", "b1", "--image", "base", "--memory", "512", "--disk-size", "1G")
	if got := strings.TrimSpace(e.ssh("b1", "command -v banger-hello || echo absent")); got != "absent" {
		t.Errorf("the base image changed: banger-hello is %q", got)
	}
	e.ok("vm", "delete", "b1")

	// Ctrl-C in the middle of a step: the builder VM and its process go,
	// nothing is stored.
	slow := writeScript(t, dir, "slow.sh", "echo sleeping\nsleep 600\n")
	cmd := e.inNS(filepath.Join(binDir, "banger"), "image", "build", "--name", "interrupted", "--from-image", "base", "--no-devbox", "--script", slow)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the builder vm to run", 3*time.Minute, func() bool {
		return strings.Contains(e.ok("vm", "list", "--json"), `"running"`)
	})
	time.Sleep(3 * time.Second) // into the script
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	waitUntil(t, "the interrupted build to leave nothing", time.Minute, func() bool {
		left, _ := filepath.Glob(filepath.Join(e.home, "state", "banger", "images", ".staging-*"))
		return len(jsonNames(e.ok("vm", "list", "--json"))) == 0 && len(left) == 0 && countQEMU(e) == 0
	})
	if _, _, code := e.run("image", "show", "interrupted"); code == 0 {
		t.Error("an interrupted build registered its image")
	}

	// The same inputs again: every step from the cache, no VM booted.
	again, d2 := build("hello-again", install)
	if len(again.Steps) != 1 || !again.Steps[0].Cached || again.Steps[0].Key != first.Steps[0].Key {
		t.Errorf("rebuild steps = %+v; want the one step from the cache (key %s)", again.Steps, first.Steps[0].Key)
	}
	t.Logf("image build from the step cache: %s (first build %s, ratio %.2f)", d2.Round(100*time.Millisecond), d1.Round(100*time.Millisecond), d2.Seconds()/d1.Seconds())
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeDeb builds a tiny local package holding /usr/bin/banger-hello.
func makeDeb(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "pkg")
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755)
	control := "Package: banger-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: banger tests <tests@banger.invalid>\nDescription: banger image build test package\n"
	os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644)
	os.WriteFile(filepath.Join(root, "usr", "bin", "banger-hello"), []byte("#!/bin/sh\necho hello from banger-hello\n"), 0o755)
	deb := filepath.Join(dir, "banger-hello_1.0_all.deb")
	if out, err := exec.Command("dpkg-deb", "--build", "--root-owner-group", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
	return deb
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// countQEMU counts the QEMU processes of this test's daemon (their command
// lines name its runtime directory).
func countQEMU(e *env) int {
	n := 0
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		if s := string(b); strings.HasPrefix(s, "/usr/bin/qemu-system") && strings.Contains(s, e.rt) {
			n++
		}
	}
	return n
}
