package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/store"
	"banger/internal/testutil/hostileguest"
	"banger/internal/vmm/vmmfake"
)

// identities is a guest that answers reseed and reidentify as a real
// guest would (the fake's in-process agent runs on the host, which it
// must not rename) and records what it was told.
type identities struct {
	mu      sync.Mutex
	reseeds int
	reqs    []agentproto.ReidentifyRequest
	refuse  bool
	hold    func() // if set, runs before a reidentify is answered
}

func (g *identities) serve(w *world) {
	hg := hostileguest.New()
	hg.Handle(agentproto.CallReseed, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		g.mu.Lock()
		g.reseeds++
		g.mu.Unlock()
		return hostileguest.Reply(agentproto.ReseedResult{Bytes: agentproto.ReseedBytes, Reseeded: true})(ctx, h, st)
	})
	hg.Handle(agentproto.CallReidentify, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		var req agentproto.ReidentifyRequest
		if err := json.Unmarshal(h.Args, &req); err != nil {
			return err
		}
		g.mu.Lock()
		hold := g.hold
		g.mu.Unlock()
		if hold != nil {
			hold()
		}
		g.mu.Lock()
		refuse := g.refuse
		if !refuse {
			g.reqs = append(g.reqs, req)
		}
		g.mu.Unlock()
		if refuse {
			return hostileguest.ErrorReply(errdefs.KindUnavailable, "the guest has no eth0 to readdress")(ctx, h, st)
		}
		return hostileguest.Reply(agentproto.Reidentified{Hostname: req.Hostname, MAC: req.MAC, Addr: req.Addr, MachineID: "0123"})(ctx, h, st)
	})
	w.Driver.ServeAgent(hg.Serve)
}

func (g *identities) told() []agentproto.ReidentifyRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]agentproto.ReidentifyRequest(nil), g.reqs...)
}

// warmWorld is a world with a network (a restored VM needs an address
// to be given) and a guest that takes new identities.
func warmWorld(t *testing.T, auto bool) (*world, *fakeNet, *identities) {
	w := newWorld(t)
	nw := &fakeNet{taps: map[string]string{}}
	w.Opts.Network = nw
	w.Opts.Config.WarmTemplates = auto
	w.restart()
	g := &identities{}
	g.serve(w)
	return w, nw, g
}

// templateLeftovers lists the names in the templates directory.
func templateLeftovers(t *testing.T, w *world) []string {
	t.Helper()
	entries, err := os.ReadDir(w.Layout.TemplatesDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestTemplateWarmCreate(t *testing.T) {
	w, nw, g := warmWorld(t, false)
	ctx := context.Background()
	src := w.create("src")
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Image != "default" || tpl.From != "src" || tpl.Auto || tpl.Bytes <= 0 || tpl.StateBytes <= 0 || tpl.Bytes < tpl.StateBytes ||
		tpl.VMMVersion != vmmfake.Version || tpl.CPUs != src.CPUs || tpl.MemoryMiB != src.MemoryMiB {
		t.Fatalf("template = %+v; want of image default from src, its sizes and version, bytes on disk", tpl)
	}
	if got := templateLeftovers(t, w); strings.Join(got, ",") != "tpl" {
		t.Errorf("templates directory holds %v, want only tpl", got)
	}
	if vm, _ := w.D.VM(ctx, "src"); vm.State != api.VMRunning || w.Driver.Paused(vm.PID) {
		t.Errorf("source vm is %s (paused %v) after the save, want running", vm.State, w.Driver.Paused(vm.PID))
	}
	list, err := w.D.Templates(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "tpl" || list[0].Bytes != tpl.Bytes {
		t.Fatalf("Templates = %+v, %v; want tpl with its size", list, err)
	}

	boots := w.Driver.Boots()
	for _, name := range []string{"w1", "w2"} {
		vm, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: name, Image: "tpl"}, nil)
		if err != nil {
			t.Fatalf("creating %s from the template: %v", name, err)
		}
		if vm.State != api.VMRunning || vm.Image != "default" || vm.CPUs != tpl.CPUs || vm.DiskBytes != tpl.DiskBytes || nw.tap(name) == "" {
			t.Errorf("warm vm = %+v (tap %q); want running, of image default, the template's sizes, a tap", vm, nw.tap(name))
		}
		for _, f := range []string{"rootfs.ext4", "work.ext4"} {
			if _, err := os.Stat(filepath.Join(vm.Dir, f)); err != nil {
				t.Errorf("warm vm has no %s of its own: %v", f, err)
			}
		}
		if err := agentAnswers(ctx, w, name); err != nil {
			t.Errorf("the warm vm's agent does not answer: %v", err)
		}
	}
	if got := w.Driver.Boots(); got != boots {
		t.Errorf("%d boots for two warm creates, want none (restores)", got-boots)
	}
	reqs := g.told()
	if len(reqs) != 2 || reqs[0].Hostname != "w1" || reqs[1].Hostname != "w2" || reqs[0].MAC == "" || reqs[0].Addr != "172.16.0.2/24" || reqs[0].Gateway != "172.16.0.1" {
		t.Errorf("reidentify requests = %+v; want w1 then w2 with their MAC, address and gateway", reqs)
	}
	if g.reseeds != 2 {
		t.Errorf("%d reseeds, want one per warm vm", g.reseeds)
	}

	if err := w.D.DeleteTemplate(ctx, "tpl"); err != nil {
		t.Fatal(err)
	}
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("templates directory holds %v after the delete", got)
	}
	if _, err := w.D.Template(ctx, "tpl"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Template after delete = %v, want not found", err)
	}
	if err := agentAnswers(ctx, w, "w1"); err != nil {
		t.Errorf("a vm made from the deleted template stopped working: %v", err)
	}
}

func TestTemplateNames(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	w.create("src")
	for _, tc := range []struct{ name, want string }{
		{"default", "an image's name"},
		{"Bad_Name", "not a DNS label"},
	} {
		if _, err := w.D.SnapshotVM(ctx, "src", tc.name, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SnapshotVM as %q = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second template of the same name = %v, want a conflict", err)
	}
	_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "big", Image: "tpl", CPUs: 4}, nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("create from the template with other cpus = %v, want invalid naming --cold", err)
	}
}

// assertNoVM checks a failed create left nothing: no row, directory, tap
// or process.
func assertNoVM(t *testing.T, w *world, nw *fakeNet, name string, live int) {
	t.Helper()
	if _, err := w.D.VM(context.Background(), name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("vm %s after a failed create: %v, want not found", name, err)
	}
	if tap := nw.tap(name); tap != "" {
		t.Errorf("vm %s left tap %s", name, tap)
	}
	if got := len(w.Driver.Live()); got != live {
		t.Errorf("%d vmm processes after a failed create, want %d", got, live)
	}
	dirs, _ := os.ReadDir(w.Layout.VMsDir)
	if len(dirs) != live {
		t.Errorf("%d vm directories after a failed create, want %d", len(dirs), live)
	}
}

func TestTemplateFailuresLeaveNothing(t *testing.T) {
	w, nw, g := warmWorld(t, false)
	ctx := context.Background()
	src := w.create("src")

	w.Driver.Fail(vmmfake.StepSave, vmmfake.ErrInjected)
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); err == nil {
		t.Fatal("a template was kept though its state could not be saved")
	}
	w.Driver.Fail(vmmfake.StepSave, nil)
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("a failed save left %v in the templates directory", got)
	}
	if vm, _ := w.D.VM(ctx, "src"); vm.State != api.VMRunning || w.Driver.Paused(src.PID) {
		t.Errorf("source vm is %s (paused %v) after a failed save, want running", vm.State, w.Driver.Paused(src.PID))
	}
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); err != nil {
		t.Fatal(err)
	}

	w.Driver.Fail(vmmfake.StepRestore, vmmfake.ErrInjected)
	_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w1", Image: "tpl"}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("create when the template does not load = %v; want a conflict offering --cold", err)
	}
	w.Driver.Fail(vmmfake.StepRestore, nil)
	assertNoVM(t, w, nw, "w1", 1)

	w.Driver.Fail(vmmfake.StepAgent, vmmfake.ErrInjected)
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w2", Image: "tpl"}, nil); err == nil {
		t.Error("a warm vm whose agent never answered was kept")
	}
	w.Driver.Fail(vmmfake.StepAgent, nil)
	assertNoVM(t, w, nw, "w2", 1)

	g.mu.Lock()
	g.refuse = true
	g.mu.Unlock()
	_, err = w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w3", Image: "tpl"}, nil)
	if err == nil || !strings.Contains(err.Error(), "eth0") {
		t.Errorf("create of a guest that refused its new identity = %v; want its refusal", err)
	}
	assertNoVM(t, w, nw, "w3", 1)
	if got := templateLeftovers(t, w); strings.Join(got, ",") != "tpl" {
		t.Errorf("templates directory holds %v after failed creates, want tpl as it was", got)
	}
}

// setTemplateVersion rewrites the VMM version in a template's saved state,
// as if an older VMM had written it.
func setTemplateVersion(t *testing.T, dir, version string) {
	t.Helper()
	path := filepath.Join(dir, "state", "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.Unmarshal(b, &st)
	st["vmm_version"] = version
	b, _ = json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateOfAnotherVMMVersionAsksForCold(t *testing.T) {
	w, nw, _ := warmWorld(t, false)
	ctx := context.Background()
	w.create("src")
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	setTemplateVersion(t, tpl.Dir, "fake-0")
	boots := w.Driver.Boots()
	_, err = w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w", Image: "tpl"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"fake-0"`) || !strings.Contains(err.Error(), "banger vm create --cold --image default") {
		t.Fatalf("create from a template of another vmm version = %v; want the versions and the --cold choice", err)
	}
	assertNoVM(t, w, nw, "w", 1)
	if w.Driver.Boots() != boots {
		t.Error("the failed warm create booted the image by itself")
	}
	vm, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w", Image: "tpl", Cold: true, DiskBytes: 64 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Image != "default" || w.Driver.Boots() != boots+1 {
		t.Errorf("cold create = image %s, %d boots; want the template's image booted", vm.Image, w.Driver.Boots()-boots)
	}
}

func TestTemplatesRemovedWithTheirImage(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	w.registerImage("other")
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "o", Image: "other", DiskBytes: 64 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	w.create("src")
	for vm, name := range map[string]string{"o": "tpl-other", "src": "tpl-default"} {
		if _, err := w.D.SnapshotVM(ctx, vm, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.D.DeleteImage(ctx, "other", true); err != nil {
		t.Fatal(err)
	}
	if got := templateLeftovers(t, w); strings.Join(got, ",") != "tpl-default" {
		t.Errorf("templates after deleting image other: %v, want tpl-default only", got)
	}
	// A template whose image went without it (an older banger deleted the
	// image) is pruned.
	if err := w.Store.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteImage(ctx, "default") }); err != nil {
		t.Fatal(err)
	}
	rep, err := w.D.PruneImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Templates != 1 || rep.TemplateBytes <= 0 {
		t.Errorf("prune report %+v; want the orphaned template and its bytes", rep)
	}
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("templates after the prune: %v, want none", got)
	}
}

func TestDefaultImageGetsAWarmTemplate(t *testing.T) {
	w, _, g := warmWorld(t, true)
	ctx := context.Background()
	boots := w.Driver.Boots()
	first, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "first"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := w.D.Template(ctx, "default-warm")
	if err != nil || !tpl.Auto || tpl.Image != "default" || tpl.From != "first" {
		t.Fatalf("template after the first create = %+v, %v; want default-warm, automatic, of image default", tpl, err)
	}
	if vm, _ := w.D.VM(ctx, "first"); vm.State != api.VMRunning || w.Driver.Paused(first.PID) {
		t.Errorf("the first vm is %s after its template was made, want running", vm.State)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "second"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.Driver.Boots() - boots; got != 1 || len(g.told()) != 1 {
		t.Errorf("%d boots and %d reidentifies for two creates; want the second restored", got, len(g.told()))
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "third", Cold: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "fourth", CPUs: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.Driver.Boots() - boots; got != 3 {
		t.Errorf("%d boots; want --cold and another size to boot", got)
	}
}

func TestWarmTemplatesOff(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("warm_templates = false, yet templates %v were made", got)
	}
}

func TestInterruptedTemplateSwept(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	partial := filepath.Join(w.Layout.TemplatesDir, ".tmp-tpl-0123")
	if err := os.MkdirAll(filepath.Join(partial, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	w.restart()
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("templates directory after a restart: %v, want the partial save removed", got)
	}
	if ts, err := w.D.Templates(context.Background()); err != nil || len(ts) != 0 {
		t.Errorf("Templates = %v, %v; want none", ts, err)
	}
}

// agentAnswers runs a command in the VM through its agent.
func agentAnswers(ctx context.Context, w *world, vm string) error {
	cl, err := w.D.Agent(ctx, vm)
	if err != nil {
		return err
	}
	_, err = cl.Output(ctx, []string{"true"}, nil)
	return err
}

// A daemon that died during a warm create (the row still creating) ends
// the restored VMM at its next start and leaves nothing of the VM; one
// that died while a template was saved (the VM paused by it, as a fork
// pauses its parent) resumes the VM, and the template's partial files
// are removed.
func TestWarmCreateInterruptedByADaemonCrash(t *testing.T) {
	w, nw, _ := warmWorld(t, false)
	ctx := context.Background()
	w.create("src")
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); err != nil {
		t.Fatal(err)
	}
	warm, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w", Image: "tpl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.D.Close() // the "crash": VMM processes keep running
	w.setRow("w", func(r *store.VM) { r.State = api.VMCreating })
	src, err := w.D.VM(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Driver.Pause(ctx, vmHandle(t, w, "src")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src.Dir, "fork.paused"), []byte("paused to save its state: src\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(w.Layout.TemplatesDir, ".tmp-tpl2-0123")
	if err := os.MkdirAll(filepath.Join(partial, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	w.restart()
	if procRuns(warm.PID) {
		t.Error("the VMM of the interrupted warm create still runs")
	}
	if _, err := w.D.VM(ctx, "w"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the half-created warm vm still has a row (err %v)", err)
	}
	if tap := nw.tap("w"); tap != "" {
		t.Errorf("the half-created warm vm holds tap %s", tap)
	}
	if _, err := os.Stat(warm.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-created warm vm's directory is still there (%v)", err)
	}
	if got := templateLeftovers(t, w); strings.Join(got, ",") != "tpl" {
		t.Errorf("templates directory after the restart: %v, want tpl only", got)
	}
	if vm, err := w.D.VM(ctx, "src"); err != nil || vm.State != api.VMRunning || w.Driver.Paused(src.PID) {
		t.Fatalf("the template's source vm = %+v, %v (driver paused %v); want running", vm, err, w.Driver.Paused(src.PID))
	}
	if err := agentAnswers(ctx, w, "src"); err != nil {
		t.Errorf("the template's source vm after the restart: %v", err)
	}
}

// A template holds whatever credentials its VM received: a VM that is
// not to receive them never starts from it. An explicit template is
// refused with the way out; the automatic one is passed over for a boot.
func TestTemplateCredentialsStayWhereTheyBelong(t *testing.T) {
	hostCreds(t)
	w, _, _ := warmWorld(t, true)
	ctx := context.Background()
	boots := w.Driver.Boots()
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "first"}, nil); err != nil {
		t.Fatal(err)
	}
	auto, err := w.D.Template(ctx, "default-warm")
	if err != nil || len(auto.AuthSync) == 0 {
		t.Fatalf("automatic template = %+v, %v; want it to record its vm's auth sync list", auto, err)
	}
	none := []string{}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "clean", AuthSync: &none}, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.Driver.Boots() - boots; got != 2 {
		t.Errorf("%d boots; want the vm without credentials booted, not restored from a template that holds them", got)
	}
	opencode := []string{"opencode"}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "src", AuthSync: &opencode, Cold: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.SnapshotVM(ctx, "src", "oc", nil); err != nil {
		t.Fatal(err)
	}
	_, err = w.D.CreateVM(ctx, api.CreateVMRequest{Name: "bare", Image: "oc", AuthSync: &none}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--auth-sync opencode") || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("create without credentials from a template that holds opencode's: %v; want a conflict naming --auth-sync opencode and --cold", err)
	}
	if _, err := w.D.VM(ctx, "bare"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the refused create left vm bare: %v", err)
	}
	both := []string{"opencode", "claude"}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "ok", Image: "oc", AuthSync: &both}, nil); err != nil {
		t.Errorf("create with opencode's credentials and more from the template: %v", err)
	}
}

// waitSpare waits until template name has (or, with want false, has
// not) a spare copy of its disks.
func waitSpare(t *testing.T, w *world, name string, want bool) api.Template {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tpl, err := w.D.Template(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if (tpl.SpareBytes > 0) == want {
			return tpl
		}
		if time.Now().After(deadline) {
			t.Fatalf("template %s: spare bytes %d after 30 s, want a spare: %v", name, tpl.SpareBytes, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWarmCreateTakesTheSpareDisks(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	w.create("src")
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	// What the template's disks hold, which every VM of it must start with.
	want := map[string][]byte{}
	for _, f := range []string{"rootfs.ext4", "work.ext4"} {
		if want[f], err = os.ReadFile(filepath.Join(tpl.Dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	tpl = waitSpare(t, w, "tpl", true)
	spare, err := os.ReadDir(filepath.Join(tpl.Dir, "spare"))
	if err != nil || len(spare) != 2 {
		t.Fatalf("spare dir holds %v, %v; want the two disks", spare, err)
	}
	inode := func(p string) uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	spareRoot := inode(filepath.Join(tpl.Dir, "spare", "rootfs.ext4"))

	vm, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w1", Image: "tpl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := inode(filepath.Join(vm.Dir, "rootfs.ext4")); got != spareRoot {
		t.Errorf("the warm vm's rootfs is inode %d, not the spare's %d: it was copied, not taken", got, spareRoot)
	}
	for f, data := range want {
		got, err := os.ReadFile(filepath.Join(vm.Dir, f))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("the warm vm's %s differs from the template's (%v)", f, err)
		}
	}
	// A new spare is made for the next create, and a create finds one
	// or copies: a second create right away works either way.
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w2", Image: "tpl"}, nil); err != nil {
		t.Fatal(err)
	}
	tpl = waitSpare(t, w, "tpl", true)
	if tpl.Bytes <= 0 || tpl.SpareBytes <= 0 {
		t.Errorf("template = %+v; want its bytes and its spare's apart", tpl)
	}
	ents, _ := os.ReadDir(tpl.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("template dir holds %s after the creates", e.Name())
		}
	}

	// What an interrupted refill or take leaves is swept at start, and
	// the spare is made again.
	for _, leftover := range []string{".tmp-spare-0123", ".tmp-taken-4567"} {
		if err := os.MkdirAll(filepath.Join(tpl.Dir, leftover), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(tpl.Dir, "spare")); err != nil {
		t.Fatal(err)
	}
	w.restart()
	waitSpare(t, w, "tpl", true)
	ents, _ = os.ReadDir(tpl.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("template dir holds %s after a restart", e.Name())
		}
	}
	if err := w.D.DeleteTemplate(ctx, "tpl"); err != nil {
		t.Fatal(err)
	}
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("templates directory holds %v after the delete", got)
	}
}

func TestTemplateMemoryIsMapped(t *testing.T) {
	w, nw, _ := warmWorld(t, false)
	ctx := context.Background()
	src := w.create("src")
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := w.Driver.MapCalls()
	if len(calls) != 1 {
		t.Fatalf("%d MapMemory calls for one template, want 1", len(calls))
	}
	spec := calls[0]
	if spec.CPUs != src.CPUs || spec.MemoryMiB != src.MemoryMiB || len(spec.Disks) < 2 || spec.Net == nil || spec.Net.TAP == "" {
		t.Errorf("MapMemory spec = %+v; want the vm's sizes, its disks and a network device on a TAP", spec)
	}
	for _, d := range spec.Disks[:2] {
		if !strings.HasPrefix(d.Path, w.Layout.TemplatesDir+string(filepath.Separator)) {
			t.Errorf("MapMemory ran on %s, not on the template's copy", d.Path)
		}
	}
	nw.mu.Lock()
	for vm, tap := range nw.taps {
		if strings.HasPrefix(vm, ".map-") {
			t.Errorf("the mapping still holds %s", tap)
		}
	}
	nw.mu.Unlock()
	if _, err := os.Stat(spec.RuntimeDir); !os.IsNotExist(err) {
		t.Errorf("the mapping's runtime dir %s is left: %v", spec.RuntimeDir, err)
	}
	b, err := os.ReadFile(filepath.Join(tpl.Dir, "state", "state.json"))
	if err != nil || !strings.Contains(string(b), `"mapped"`) || !strings.Contains(string(b), tpl.Dir) {
		t.Errorf("template state.json = %s, %v; want the mapped state, in the template's directory", b, err)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w1", Image: "tpl"}, nil); err != nil {
		t.Fatal(err)
	}

	// A mapping that fails leaves a template that restores all the same.
	w.Driver.Fail(vmmfake.StepMap, errors.New("qemu exited while loading the stream"))
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl2", nil); err != nil {
		t.Fatalf("a template whose mapping failed: %v", err)
	}
	w.Driver.Fail(vmmfake.StepMap, nil)
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "w2", Image: "tpl2"}, nil); err != nil {
		t.Fatal(err)
	}
}
