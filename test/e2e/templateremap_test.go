//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/vmm"
)

// TestOlderTemplateMappedAtStart: a template whose memory is in the
// migration stream, as an older banger saved them, is mapped into a file
// by the daemon at its next start, in the background, and a warm create
// from it then restores from the mapped state. The template is made by
// hand from a suspended VM (its state is saved the stream way) and its
// disks.
func TestOlderTemplateMappedAtStart(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "s", "--image", "bb", "--memory", "256", "--disk-size", "128M")
	e.ok("vm", "stop", "s", "--suspend")
	s := e.vm("s")
	e.killDaemon()

	readState := func(dir string) vmm.State {
		t.Helper()
		var st vmm.State
		b, err := os.ReadFile(filepath.Join(dir, "state", "state.json"))
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := readState(s.Dir)
	if st.Files["memory"] != "" {
		t.Fatalf("the suspended vm's state %+v has a memory file; want the stream way", st)
	}
	tplDir := filepath.Join(filepath.Dir(filepath.Dir(s.Dir)), "images", "templates", "old")
	if err := os.MkdirAll(tplDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"state", "rootfs.ext4", "work.ext4"} {
		if out, err := exec.Command("cp", "-a", "--sparse=always", filepath.Join(s.Dir, f), tplDir).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", f, err, out)
		}
	}
	meta, _ := json.Marshal(api.Template{Name: "old", Image: "bb", From: "s", CPUs: s.CPUs, MemoryMiB: s.MemoryMiB,
		DiskBytes: s.DiskBytes, VMM: "qemu", VMMVersion: st.VMMVersion, Received: true, CreatedAt: time.Now()})
	if err := os.WriteFile(filepath.Join(tplDir, "template.json"), meta, 0o600); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	e.startDaemon()
	deadline := time.Now().Add(5 * time.Minute)
	for readState(tplDir).Files["memory"] == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the template's memory is not mapped 5 min after the start; events:\n%s\nlog:\n%s", e.ok("events", "-n", "20"), e.daemonLog())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("template mapped %s after the daemon's start", time.Since(t0).Round(100*time.Millisecond))
	if ev := e.ok("events", "-n", "20"); !strings.Contains(ev, "template old's memory was mapped") {
		t.Errorf("no event of the mapping:\n%s", ev)
	}
	e.ok("vm", "create", "--name", "w", "--image", "old")
	if got := strings.TrimSpace(e.ssh("w", "hostname")); got != "w" {
		t.Errorf("the warm vm's hostname = %q, want w", got)
	}
	ents, _ := os.ReadDir(filepath.Dir(tplDir))
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), ".") {
			t.Errorf("templates directory holds %s", en.Name())
		}
	}
	// The suspended vm's own state was not touched.
	e.ok("vm", "start", "s")
	if got := strings.TrimSpace(e.ssh("s", "hostname")); got != "s" {
		t.Errorf("the suspended vm's hostname after its start = %q, want s", got)
	}
}
