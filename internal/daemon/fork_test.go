package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/daemon/daemontest"
	"banger/internal/daemon/vms"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/testutil/hostileguest"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// forkWorld is a daemon with a leasing network and guests that answer
// reidentify, and a running VM "dev" counting in a session.
func forkWorld(t *testing.T) (*world, *daemontest.LeaseNet, *daemontest.IdentityGuest, api.VM, func() int) {
	dw, nw, g := daemontest.NewForkable(t, nil)
	w := &world{World: dw, t: t}
	vm := w.create("dev")
	return w, nw, g, vm, startCounter(t, w, "dev")
}

// assertParentRuns checks that the parent runs in its own process,
// unpaused, with its counter moving and its agent answering.
func assertParentRuns(t *testing.T, w *world, vm api.VM, count func() int) {
	t.Helper()
	ctx := context.Background()
	got, err := w.D.VM(ctx, vm.Name)
	if err != nil || got.State != api.VMRunning || got.PID != vm.PID || w.Driver.Paused(vm.PID) {
		t.Fatalf("parent = %+v, %v (paused %v); want running in its process", got, err, w.Driver.Paused(vm.PID))
	}
	c := count()
	waitFor(t, "the parent's counter to go on", func() bool { return count() > c })
	cl, err := w.D.Agent(ctx, vm.Name)
	if err == nil {
		_, err = cl.Info(ctx)
	}
	if err != nil {
		t.Errorf("the parent's agent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(vm.Dir, "fork.paused")); err == nil {
		t.Error("the parent's fork marker is left")
	}
}

func TestForkRunningVM(t *testing.T) {
	w, nw, g, vm, count := forkWorld(t)
	ctx := context.Background()
	var steps []string
	p := progress.Func(func(e api.Event) {
		if len(steps) == 0 || steps[len(steps)-1] != e.Step {
			steps = append(steps, e.Step)
		}
	})
	twin, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if twin.State != api.VMRunning || twin.PID == 0 || twin.PID == vm.PID || twin.Dir == vm.Dir {
		t.Fatalf("fork = %+v; want running in its own process and directory", twin)
	}
	if twin.IP == "" || twin.IP == vm.IP || twin.MAC == vm.MAC || twin.TAP == "" || twin.TAP == vm.TAP {
		t.Errorf("fork's network ip %s mac %s tap %s; parent's %s %s %s: want its own", twin.IP, twin.MAC, twin.TAP, vm.IP, vm.MAC, vm.TAP)
	}
	if twin.CPUs != vm.CPUs || twin.MemoryMiB != vm.MemoryMiB || twin.Image != vm.Image {
		t.Errorf("fork's sizes %+v differ from the parent's %+v", twin, vm)
	}
	if w.Driver.Boots() != 1 {
		t.Errorf("%d boots; the fork must be restored, not booted", w.Driver.Boots())
	}
	want := []string{"pause", "save", "disk", "resume", "restore", "agent", "identity"}
	if !slices.Equal(steps, want) {
		t.Errorf("progress steps %v, want %v", steps, want)
	}
	for _, f := range []string{vms.RootfsFile, vms.WorkFile} {
		a, _ := os.ReadFile(filepath.Join(vm.Dir, f))
		b, err := os.ReadFile(filepath.Join(twin.Dir, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("the fork's %s is not a copy of its parent's (%v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(twin.Dir, "fork.state")); err == nil {
		t.Error("the fork's copy of the saved state is left")
	}
	// Identity: reseeded, then reidentified, with the link down.
	calls, ids, down := g.Record()
	if !slices.Equal(calls, []string{agentproto.CallReseed, agentproto.CallReidentify}) {
		t.Errorf("identity calls %v; want reseed then reidentify", calls)
	}
	wantID := agentproto.ReidentifyRequest{Hostname: "twin", MAC: twin.MAC, Addr: twin.IP + "/24", Gateway: "172.16.0.1", DNS: []string{"1.1.1.1"}}
	if len(ids) != 1 || !reflectEqual(ids[0], wantID) {
		t.Errorf("reidentify %+v; want %+v", ids, wantID)
	}
	if len(down) != 1 || down[0] != 1 {
		t.Errorf("links down at the reidentify: %v; want the fork's alone", down)
	}
	if !w.Driver.LinkUp(twin.PID) {
		t.Error("the fork's link is still down")
	}
	assertParentRuns(t, w, vm, count)
	cl, err := w.D.Agent(ctx, "twin")
	if err == nil {
		_, err = cl.Info(ctx)
	}
	if err != nil {
		t.Errorf("the fork's agent: %v", err)
	}

	// A second fork; then deleting either side leaves the other working.
	if _, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.D.DeleteVM(ctx, "twin", false); err != nil {
		t.Fatal(err)
	}
	if lease, tap := nw.Holds("twin"); lease || tap {
		t.Errorf("the deleted fork still holds lease %v tap %v", lease, tap)
	}
	if _, err := os.Stat(twin.Dir); err == nil {
		t.Error("the deleted fork's directory is left")
	}
	assertParentRuns(t, w, vm, count)
	if err := w.D.DeleteVM(ctx, "dev", true); err != nil {
		t.Fatal(err)
	}
	cl, err = w.D.Agent(ctx, "twin2")
	if err == nil {
		_, err = cl.Info(ctx)
	}
	if got, _ := w.D.VM(ctx, "twin2"); err != nil || got.State != api.VMRunning {
		t.Errorf("the second fork after its parent's delete: %s, %v", got.State, err)
	}
}

func reflectEqual(a, b agentproto.ReidentifyRequest) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestForkSuspendedVM(t *testing.T) {
	w, _, g, vm, count := forkWorld(t)
	ctx := context.Background()
	if _, err := w.D.SuspendVM(ctx, "dev", nil); err != nil {
		t.Fatal(err)
	}
	saved := assertFrozen(t, count, "suspended")
	twin, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if twin.State != api.VMRunning {
		t.Fatalf("fork of a suspended vm is %s", twin.State)
	}
	if g.Calls(agentproto.CallReidentify) != 1 {
		t.Error("the fork was not reidentified")
	}
	got, _ := w.D.VM(ctx, "dev")
	if got.State != api.VMSuspended || got.StateBytes <= 0 {
		t.Fatalf("parent after the fork = %+v; want suspended with its state", got)
	}
	// The parent's state was not consumed: it resumes where it was.
	if _, err := w.D.StartVM(ctx, "dev", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the parent's counter to go on", func() bool { return count() > saved })
	if c := count(); c < saved {
		t.Errorf("the parent's counter restarted (%d, was %d)", c, saved)
	}
	_ = vm
}

// TestForkPausedVM: a paused parent is forked without running it, and
// stays paused; the fork runs.
func TestForkPausedVM(t *testing.T) {
	w, _, _, vm, count := forkWorld(t)
	ctx := context.Background()
	if _, err := w.D.PauseVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	twin, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if twin.State != api.VMRunning || w.Driver.Paused(twin.PID) {
		t.Errorf("fork of a paused vm = %+v (paused %v); want running", twin, w.Driver.Paused(twin.PID))
	}
	got, _ := w.D.VM(ctx, "dev")
	if got.State != api.VMPaused || !w.Driver.Paused(vm.PID) {
		t.Errorf("parent after the fork is %s (driver paused %v); want paused as before", got.State, w.Driver.Paused(vm.PID))
	}
	assertFrozen(t, count, "paused")
	if _, err := w.D.ResumeVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	assertParentRuns(t, w, vm, count)
}

// TestForkFailureLeavesNothing injects a failure at each step of a fork:
// no row, directory, lease, TAP or process of the fork is left, and the
// parent runs as before.
func TestForkFailureLeavesNothing(t *testing.T) {
	cases := []struct {
		name   string
		inject func(w *world, g *daemontest.IdentityGuest)
	}{
		{"pause", func(w *world, g *daemontest.IdentityGuest) { w.Driver.Fail(vmmfake.StepPause, vmmfake.ErrInjected) }},
		{"save", func(w *world, g *daemontest.IdentityGuest) { w.Driver.Fail(vmmfake.StepSave, vmmfake.ErrInjected) }},
		{"restore", func(w *world, g *daemontest.IdentityGuest) { w.Driver.Fail(vmmfake.StepRestore, vmmfake.ErrInjected) }},
		{"link", func(w *world, g *daemontest.IdentityGuest) { w.Driver.Fail(vmmfake.StepLink, vmmfake.ErrInjected) }},
		{"agent", func(w *world, g *daemontest.IdentityGuest) { w.Driver.Fail(vmmfake.StepAgent, vmmfake.ErrInjected) }},
		{"reseed", func(w *world, g *daemontest.IdentityGuest) {
			g.Handle(agentproto.CallReseed, hostileguest.ErrorReply(errdefs.KindInternal, "injected reseed failure"))
		}},
		{"reidentify", func(w *world, g *daemontest.IdentityGuest) {
			g.Handle(agentproto.CallReidentify, hostileguest.ErrorReply(errdefs.KindInternal, "injected reidentify failure"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, nw, g, vm, count := forkWorld(t)
			ctx := context.Background()
			c.inject(w, g)
			_, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil)
			if err == nil || !strings.Contains(err.Error(), "nothing of twin was kept") {
				t.Fatalf("ForkVM = %v; want an error saying nothing was kept", err)
			}
			for _, s := range []string{vmmfake.StepPause, vmmfake.StepSave, vmmfake.StepRestore, vmmfake.StepLink, vmmfake.StepAgent} {
				w.Driver.Fail(s, nil)
			}
			if _, err := w.D.VM(ctx, "twin"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("the failed fork has a row (%v)", err)
			}
			if lease, tap := nw.Holds("twin"); lease || tap {
				t.Errorf("the failed fork holds lease %v tap %v", lease, tap)
			}
			if live := w.Driver.Live(); len(live) != 1 || live[0].PID != vm.PID {
				t.Errorf("%d VMM processes run; want the parent's alone", len(live))
			}
			ents, _ := os.ReadDir(w.Opts.Layout.VMsDir)
			if len(ents) != 1 {
				t.Errorf("%d vm directories; want the parent's alone", len(ents))
			}
			if ents, _ := os.ReadDir(filepath.Join(w.Opts.Layout.RuntimeDir, "vm")); len(ents) != 1 {
				t.Errorf("%d vm runtime directories; want the parent's alone", len(ents))
			}
			assertParentRuns(t, w, vm, count)
			// The same name forks once the fault is gone.
			if c.name != "reseed" && c.name != "reidentify" {
				if _, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil); err != nil {
					t.Errorf("forking again: %v", err)
				}
			}
		})
	}
}

func TestForkRefusals(t *testing.T) {
	w, _, _, vm, count := forkWorld(t)
	ctx := context.Background()
	w.create("other")
	for _, c := range []struct {
		src, name string
		kind      error
		want      string
	}{
		{"dev", "", errdefs.ErrInvalid, "--name"},
		{"dev", "dev", errdefs.ErrInvalid, "a name of its own"},
		{"dev", "Bad Name", errdefs.ErrInvalid, ""},
		{"dev", "other", errdefs.ErrConflict, "already exists"},
		{"nope", "twin", errdefs.ErrNotFound, "vm list"},
	} {
		_, err := w.D.ForkVM(ctx, c.src, api.ForkVMRequest{Name: c.name}, nil)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fork %s as %q: %v; want %v mentioning %q", c.src, c.name, err, c.kind, c.want)
		}
	}
	if _, err := w.D.StopVM(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.ForkVM(ctx, "other", api.ForkVMRequest{Name: "twin"}, nil); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("forking a stopped vm: %v; want a conflict saying it is stopped", err)
	}
	assertParentRuns(t, w, vm, count)
}

// TestForkInterruptedByADaemonCrash: a daemon that stopped in the middle
// of a fork (the fork restored but not yet running, its parent paused)
// removes the fork at its next start, freeing all it held, and resumes
// the parent.
func TestForkInterruptedByADaemonCrash(t *testing.T) {
	w, nw, _, vm, count := forkWorld(t)
	ctx := context.Background()
	twin, err := w.D.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.D.Close()
	w.D = nil
	// As the crash left them: the fork still creating, the parent paused
	// with the fork's mark.
	w.setRow("twin", func(r *store.VM) { r.State = api.VMCreating })
	if err := w.Driver.Pause(ctx, vmHandle(t, w, "dev")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vm.Dir, "fork.paused"), []byte("paused for a fork: dev\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFrozen(t, count, "paused for a fork")
	w.restart()
	assertParentRuns(t, w, vm, count)
	if _, err := w.D.VM(ctx, "twin"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the interrupted fork still has a row (%v)", err)
	}
	if procRuns(twin.PID) {
		t.Error("the interrupted fork's VMM still runs")
	}
	if _, err := os.Stat(twin.Dir); err == nil {
		t.Error("the interrupted fork's directory is left")
	}
	if lease, tap := nw.Holds("twin"); lease || tap {
		t.Errorf("the interrupted fork holds lease %v tap %v", lease, tap)
	}
}

// vmHandle is the VMM handle recorded for vm.
func vmHandle(t *testing.T, w *world, name string) *vmm.Handle {
	t.Helper()
	r, err := w.Store.VM(context.Background(), name)
	if err != nil || r.Handle == nil {
		t.Fatalf("vm %s has no handle (%v)", name, err)
	}
	return r.Handle
}
