//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/client"
	"banger/internal/vmm"
)

// TestWarmCreateBusybox keeps a booted busybox VM as a template and
// creates a VM from it: the new VM answers SSH under its own name with
// its own, re-pinned host key, while the VM it was saved from runs on.
// With BANGER_E2E_FIGURES=1 it also measures warm against cold creates
// of the same image (median of five each, from the create command to the
// output of a first command in the guest); with BANGER_E2E_WARM_STEPS=1
// the steps of a warm create for 256, 512 and 1024 MiB guests.
func TestWarmCreateBusybox(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	testWarmCreate(t, e, "bb", []int{256, 512, 1024})
}

// TestWarmCreateDebian is the same on the Debian image (OpenSSH, which
// must serve its new host keys); its steps for a 512 MiB guest only.
func TestWarmCreateDebian(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	testWarmCreate(t, e, "deb", []int{512})
}

// testWarmCreate checks a warm create of image; with BANGER_E2E_FIGURES
// set it times five cold and five warm creates, and with
// BANGER_E2E_WARM_STEPS the steps of a warm create for each memory size.
func testWarmCreate(t *testing.T, e *env, image string, sizes []int) {
	e.ok("vm", "create", "--name", "src", "--image", image, "--memory", "512", "--disk-size", "1G")
	src := e.vm("src")
	e.ok("image", "snapshot", "src", "--name", "bbt")
	var tpl api.Template
	if err := json.Unmarshal([]byte(e.ok("image", "show", "--json", "bbt")), &tpl); err != nil {
		t.Fatal(err)
	}
	if tpl.Image != image || tpl.StateBytes <= 0 || tpl.Bytes <= tpl.StateBytes {
		t.Fatalf("template = %+v; want of image bb, with its state and disks on disk", tpl)
	}
	// QEMU templates keep their memory in a file of its own, which
	// restores map (docs/snapshots.md).
	var st vmm.State
	if b, err := os.ReadFile(filepath.Join(tpl.Dir, "state", "state.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Files["memory"] == "" {
		t.Errorf("template state %+v has no memory file: its memory was not mapped; events:\n%s", st, e.ok("events", "-n", "10"))
	}
	waitSpare(t, e, "bbt")
	if out := e.ok("image", "list"); !strings.Contains(out, "bbt") {
		t.Errorf("image list does not show the template:\n%s", out)
	}

	e.ok("vm", "create", "--name", "w1", "--image", "bbt")
	w1 := e.vm("w1")
	if w1.State != api.VMRunning || w1.Image != image || w1.IP == src.IP || w1.MAC == src.MAC {
		t.Fatalf("warm vm = %+v; want running, of image bb, its own address", w1)
	}
	if w1.HostKey == "" || w1.HostKey == src.HostKey {
		t.Errorf("warm vm's pinned host key %q; want its own, not its template's %q", w1.HostKey, src.HostKey)
	}
	if got := e.ssh("w1", "hostname"); strings.TrimSpace(got) != "w1" {
		t.Errorf("warm vm's hostname over ssh = %q, want w1", got)
	}
	if got := e.ssh("w1", "cat /etc/machine-id 2>/dev/null || true"); strings.TrimSpace(got) == strings.TrimSpace(e.ssh("src", "cat /etc/machine-id 2>/dev/null || true")) {
		t.Errorf("warm vm shares its template's machine-id %q", got)
	}
	if got := e.ssh("src", "hostname"); strings.TrimSpace(got) != "src" {
		t.Errorf("the template's vm says it is %q after the save, want src", got)
	}
	e.ok("vm", "delete", "--force", "w1")
	e.assertNetworkFreed("w1")

	if os.Getenv("BANGER_E2E_FIGURES") != "" {
		warmFigures(t, e, image, tpl)
	}
	if os.Getenv("BANGER_E2E_WARM_STEPS") != "" {
		warmSteps(t, e, image, sizes)
	}
}

// warmFigures times five cold and five warm creates of image,
// alternating, each from the create command to the output of a first
// command in the guest: run with 'vm exec' (the agent), and in a second
// round with 'vm ssh' (a CLI start and an SSH handshake more).
func warmFigures(t *testing.T, e *env, image string, tpl api.Template) {
	timeCreate := func(name, first string, args ...string) time.Duration {
		t0 := time.Now()
		e.ok(append([]string{"vm", "create", "--name", name}, args...)...)
		if out := e.ok("vm", first, name, "--", "echo", "ready"); strings.TrimSpace(out) != "ready" {
			t.Fatalf("%s: first command printed %q", name, out)
		}
		d := time.Since(t0)
		e.ok("vm", "delete", "--force", name)
		return d
	}
	rounds := []string{"exec", "ssh"}
	if only := os.Getenv("BANGER_E2E_WARM_FIRST"); only != "" {
		rounds = []string{only} // exec or ssh: one round only
	}
	for _, first := range rounds {
		var cold, warm []time.Duration
		for i := 0; i < 5; i++ {
			cold = append(cold, timeCreate(fmt.Sprintf("c%d", i), first, "--image", image, "--memory", "512", "--disk-size", "1G"))
			warm = append(warm, timeCreate(fmt.Sprintf("w%d", i), first, "--image", "bbt"))
		}
		mc, mw := median(cold), median(warm)
		t.Logf("%s, 512 MiB, first command by vm %s: cold create to first output median %s %v; warm median %s %v; warm/cold %.2f", image, first,
			mc.Round(10*time.Millisecond), cold, mw.Round(10*time.Millisecond), warm, float64(mw)/float64(mc))
	}
	tpl, _ = e.template("bbt")
	t.Logf("template bbt: %d bytes on disk, %d of them saved state, %d spare disks (vmm %s)", tpl.Bytes, tpl.StateBytes, tpl.SpareBytes, tpl.VMMVersion)
}

// template reads a template as image show --json prints it.
func (e *env) template(name string) (api.Template, error) {
	var tpl api.Template
	err := json.Unmarshal([]byte(e.ok("image", "show", "--json", name)), &tpl)
	return tpl, err
}

// warmSteps logs where a warm create spends its time, and how the restore
// grows with the guest's memory: one template per memory size.
func warmSteps(t *testing.T, e *env, image string, sizes []int) {
	cl := client.New(filepath.Join(e.rt, "banger", "bangerd.sock"))
	for _, mem := range sizes {
		src, name := fmt.Sprintf("m%d", mem), fmt.Sprintf("t%d", mem)
		e.ok("vm", "create", "--name", src, "--image", image, "--memory", fmt.Sprint(mem), "--disk-size", "1G")
		e.ok("image", "snapshot", src, "--name", name)
		e.ok("vm", "delete", "--force", src)
		mt := waitSpare(t, e, name)
		steps := map[string]time.Time{}
		var order []string
		t0 := time.Now()
		if _, err := cl.CreateVM(context.Background(), api.CreateVMRequest{Name: "x" + name, Image: name}, func(ev api.Event) {
			if _, ok := steps[ev.Step]; !ok {
				steps[ev.Step] = time.Now()
				order = append(order, ev.Step)
			}
		}); err != nil {
			t.Fatal(err)
		}
		end := time.Now()
		var parts []string
		for i, st := range order {
			next := end
			if i+1 < len(order) {
				next = steps[order[i+1]]
			}
			parts = append(parts, fmt.Sprintf("%s %s", st, next.Sub(steps[st]).Round(10*time.Millisecond)))
		}
		t.Logf("%d MiB guest: state %d MiB on disk (template %d MiB); warm create %s: %s",
			mem, mt.StateBytes>>20, mt.Bytes>>20, end.Sub(t0).Round(10*time.Millisecond), strings.Join(parts, ", "))
		e.ok("vm", "delete", "--force", "x"+name)
	}
}

// waitSpare waits until template name has its spare disks made.
func waitSpare(t *testing.T, e *env, name string) api.Template {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		tpl, err := e.template(name)
		if err != nil {
			t.Fatal(err)
		}
		if tpl.SpareBytes > 0 {
			return tpl
		}
		if time.Now().After(deadline) {
			t.Fatalf("template %s has no spare disks after 2 minutes", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
