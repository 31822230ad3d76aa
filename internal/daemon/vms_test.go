package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/daemon"
	"banger/internal/daemon/daemontest"
	"banger/internal/daemon/vms"
	"banger/internal/ext4"
	"banger/internal/store"
	"banger/internal/vmm/vmmfake"
)

// world is daemontest's World with the test's t at hand.
type world struct {
	*daemontest.World
	t *testing.T
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return &world{World: daemontest.New(t, nil), t: t}
}

// restart replaces the daemon with a new instance on the same state, as
// after a daemon restart; VM processes keep running.
func (w *world) restart() { w.Restart(w.t) }

func (w *world) registerImage(name string) { w.RegisterImage(w.t, name) }

func (w *world) create(name string) api.VM {
	w.t.Helper()
	return w.CreateVM(w.t, name)
}

// assertGone checks that nothing of vm is left.
func (w *world) assertGone(name string) {
	w.t.Helper()
	if _, err := w.D.VM(context.Background(), name); !errors.Is(err, errdefs.ErrNotFound) {
		w.t.Errorf("vm %s still has a row (err %v)", name, err)
	}
	for _, dir := range []string{w.Opts.Layout.VMsDir, filepath.Join(w.Opts.Layout.RuntimeDir, "vm")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			w.t.Errorf("leftover %s in %s", e.Name(), dir)
		}
	}
	if live := w.Driver.Live(); len(live) != 0 {
		w.t.Errorf("%d VMM process(es) still running", len(live))
	}
	kh, _ := os.ReadFile(filepath.Join(w.Opts.Layout.SSHDir, "known_hosts"))
	if strings.Contains(string(kh), name+".vm") {
		w.t.Errorf("known_hosts still pins %s.vm", name)
	}
}

func TestVMCreateStopStartDelete(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("dev")
	if vm.State != api.VMRunning || vm.PID == 0 {
		t.Fatalf("created vm = %+v, want running with a pid", vm)
	}
	root := filepath.Join(vm.Dir, vms.RootfsFile)
	if got, err := ext4.ReadFile(ctx, root, vms.GuestAgentPath); err != nil || string(got) != string(w.Agent) {
		t.Errorf("agent in the vm's rootfs = %q, %v; want the daemon's agent binary", got, err)
	}
	if got, _ := ext4.ReadFile(ctx, w.Rootfs, vms.GuestAgentPath); len(got) != 0 {
		t.Error("the agent was written into the image's own rootfs, not the vm's clone")
	}
	if got, err := ext4.ReadFile(ctx, filepath.Join(vm.Dir, vms.WorkFile), "/.ssh/authorized_keys"); err != nil || !strings.Contains(string(got), "AAAAtestkey") {
		t.Errorf("authorized_keys on the work disk = %q, %v", got, err)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "dev"}, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("duplicate create err = %v, want conflict", err)
	}
	if err := w.D.DeleteImage(ctx, "default", false); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "dev") {
		t.Errorf("deleting an image in use: %v, want a conflict naming the vm", err)
	}

	stopped, err := w.D.StopVM(ctx, "dev")
	if err != nil || stopped.State != api.VMStopped || stopped.PID != 0 {
		t.Fatalf("StopVM = %+v, %v", stopped, err)
	}
	if processRuns(vm.PID) || len(w.Driver.Live()) != 0 {
		t.Error("VMM process still alive after stop")
	}
	if !w.Driver.Released(vm.PID) {
		t.Error("the stopped VMM's files were not released")
	}
	started, err := w.D.StartVM(ctx, "dev", nil)
	if err != nil || started.State != api.VMRunning || started.PID == vm.PID {
		t.Fatalf("StartVM = %+v, %v", started, err)
	}
	if w.Driver.Boots() != 2 {
		t.Errorf("boots = %d, want 2", w.Driver.Boots())
	}
	if err := w.D.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	w.assertGone("dev")
}

func TestVMCreateFailureAtEachStepLeavesNothing(t *testing.T) {
	for _, step := range []string{vmmfake.StepCreate, vmmfake.StepStart, vmmfake.StepAgent} {
		t.Run(step, func(t *testing.T) {
			w := newWorld(t)
			w.Driver.Fail(step, vmmfake.ErrInjected)
			_, err := w.D.CreateVM(context.Background(), api.CreateVMRequest{Name: "broken", DiskBytes: 64 << 20}, nil)
			if err == nil {
				t.Fatal("CreateVM succeeded despite the injected failure")
			}
			if step == vmmfake.StepAgent && !strings.Contains(err.Error(), "did not answer") {
				t.Errorf("agent timeout error = %v; want it to say the agent did not answer", err)
			}
			w.assertGone("broken")
		})
	}
}

func TestForcedDeleteKeepsEverythingWhileTheVMMLives(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("stuck")
	w.Driver.Fail(vmmfake.StepKill, vmmfake.ErrInjected)
	err := w.D.DeleteVM(ctx, "stuck", true)
	if err == nil || !strings.Contains(err.Error(), "still runs") {
		t.Fatalf("forced delete with a failing kill: err = %v, want it to say the process still runs", err)
	}
	if got, err := w.D.VM(ctx, "stuck"); err != nil || got.State != api.VMRunning {
		t.Fatalf("vm after the failed delete = %+v, %v; want it kept, running", got, err)
	}
	if _, err := os.Stat(vm.Dir); err != nil {
		t.Errorf("the vm's disks went while its VMM runs: %v", err)
	}
	w.Driver.Fail(vmmfake.StepKill, nil)
	if err := w.D.DeleteVM(ctx, "stuck", true); err != nil {
		t.Fatal(err)
	}
	w.assertGone("stuck")
}

func TestVMThatCannotBeReadoptedIsEnded(t *testing.T) {
	w := newWorld(t)
	vm := w.create("wedged")
	w.D.Close()
	w.Driver.Fail(vmmfake.StepAdopt, vmmfake.ErrInjected)
	w.restart()
	w.Driver.Fail(vmmfake.StepAdopt, nil)
	got, err := w.D.VM(context.Background(), "wedged")
	if err != nil || got.State != api.VMStopped {
		t.Fatalf("vm after a failed re-adoption = %+v, %v; want stopped", got, err)
	}
	if processRuns(vm.PID) || len(w.Driver.Live()) != 0 {
		t.Fatal("the unmanageable VMM process still runs; a start would boot a second one on the same disks")
	}
	if _, err := w.D.StartVM(context.Background(), "wedged", nil); err != nil {
		t.Fatal(err)
	}
	if n := len(w.Driver.Live()); n != 1 {
		t.Errorf("%d VMM processes after start, want 1", n)
	}
}

func TestStopAfterRestartAsksTheGuestFirst(t *testing.T) {
	w := newWorld(t)
	w.create("calm")
	w.restart() // re-adopted: no agent connection yet
	if _, err := w.D.StopVM(context.Background(), "calm"); err != nil {
		t.Fatal(err)
	}
	if n := w.Driver.AgentShutdowns(); n != 1 {
		t.Errorf("guest powered off by its agent %d times, want 1: stop went straight to the VMM", n)
	}
}

func TestVMProcessDeathIsNoticed(t *testing.T) {
	w := newWorld(t)
	vm := w.create("crashy")
	syscall.Kill(vm.PID, syscall.SIGKILL)
	waitState(t, w.D, "crashy", api.VMStopped)
	// The event follows the state change.
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _ := w.D.Events(context.Background(), "vm/crashy", 0, 10)
		if len(evs) > 0 && strings.Contains(evs[len(evs)-1].Message, "stopped on its own") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events = %+v; want one saying the vm stopped on its own", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestVMReadoptedAfterDaemonRestart(t *testing.T) {
	w := newWorld(t)
	a := w.create("alive")
	b := w.create("dies")
	w.D.Close()
	syscall.Kill(b.PID, syscall.SIGKILL)
	time.Sleep(50 * time.Millisecond)
	w.restart()
	got, err := w.D.VM(context.Background(), "alive")
	if err != nil || got.State != api.VMRunning || got.PID != a.PID {
		t.Fatalf("after restart alive = %+v, %v; want running with pid %d", got, err, a.PID)
	}
	waitState(t, w.D, "dies", api.VMStopped)
	if !w.Driver.Released(b.PID) {
		t.Error("the files of the VMM that died while the daemon was down were not released")
	}
	// The adopted VM is watched again: its death is noticed.
	syscall.Kill(a.PID, syscall.SIGKILL)
	waitState(t, w.D, "alive", api.VMStopped)
	// And it can be reached again once started.
	if _, err := w.D.StartVM(context.Background(), "alive", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.Ports(context.Background(), "alive"); err != nil {
		t.Errorf("Ports through the agent after restart: %v", err)
	}
}

func TestVMBadRequests(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cases := []struct {
		req  api.CreateVMRequest
		kind error
		want string
	}{
		{api.CreateVMRequest{Name: "Bad_Name"}, errdefs.ErrInvalid, "DNS label"},
		{api.CreateVMRequest{Name: "x", Image: "nope"}, errdefs.ErrNotFound, "banger image list"},
		{api.CreateVMRequest{Name: "x", CPUs: 99}, errdefs.ErrInvalid, "--cpus"},
		{api.CreateVMRequest{Name: "x", MemoryMiB: 16}, errdefs.ErrInvalid, "--memory"},
	}
	for _, tc := range cases {
		_, err := w.D.CreateVM(ctx, tc.req, nil)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CreateVM(%+v) = %v; want %v mentioning %q", tc.req, err, tc.kind, tc.want)
		}
	}
	w.assertGone("x")
}

func waitState(t *testing.T, d *daemon.Daemon, name string, want api.VMState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		vm, err := d.VM(context.Background(), name)
		if err == nil && vm.State == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	vm, _ := d.VM(context.Background(), name)
	t.Fatalf("vm %s state = %s, want %s", name, vm.State, want)
}

func TestForcedImageDeleteUnderAVM(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	if err := w.D.DeleteImage(ctx, "default", true); err != nil {
		t.Fatalf("forced delete of an image in use: %v", err)
	}
	if vm, err := w.D.VM(ctx, "dev"); err != nil || vm.State != api.VMRunning {
		t.Fatalf("vm after its image was deleted = %+v, %v; want it still running on its own disks", vm, err)
	}
	if _, err := w.D.StopVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	_, err := w.D.StartVM(ctx, "dev", nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `image "default", which was deleted`) {
		t.Fatalf("starting a vm whose image is gone: err = %v, want a conflict naming the image", err)
	}
	if err := w.D.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	w.assertGone("dev")
}

func TestStopEscalatesToSignals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("deaf")
	// Neither the agent's shutdown nor the power button ends this guest:
	// stop must still end it, with SIGTERM.
	w.Driver.Fail(vmmfake.StepGuestOff, vmmfake.ErrInjected)
	w.Driver.Fail(vmmfake.StepStop, vmmfake.ErrInjected)
	stopped, err := w.D.StopVM(ctx, "deaf")
	if err != nil || stopped.State != api.VMStopped {
		t.Fatalf("StopVM of a guest that ignores shutdown = %+v, %v; want stopped", stopped, err)
	}
	if processRuns(vm.PID) || len(w.Driver.Live()) != 0 {
		t.Fatal("the VMM process still runs after stop")
	}
	if n := w.Driver.AgentShutdowns(); n != 0 {
		t.Errorf("agent shutdowns = %d, want 0 (the guest ignored them)", n)
	}
	if !w.Driver.Released(vm.PID) {
		t.Error("the VMM's files were not released")
	}
}

// A create whose caller goes away (Ctrl-C) while the guest boots is
// undone then, not after the boot timeout.
func TestVMCreateCancelledWhileBooting(t *testing.T) {
	w := newWorld(t)
	w.Driver.Fail(vmmfake.StepAgent, vmmfake.ErrInjected) // the agent never answers
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(w.Driver.Live()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "gone", DiskBytes: 64 << 20}, nil)
	// Cancelled, not timed out: the wait for the agent ended with the caller.
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("cancelled create: err = %v, want context.Canceled", err)
	}
	w.assertGone("gone")
}

// A daemon that died during a boot ends that boot's VMM at its next
// start: a create's first boot leaves nothing, a start's leaves the VM
// stopped with the reason. Neither is adopted half-booted.
func TestBootInterruptedByADaemonCrash(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	creating, starting := w.create("creating"), w.create("starting")
	w.D.Close() // the "crash": VMM processes keep running
	for name, state := range map[string]api.VMState{"creating": api.VMCreating, "starting": api.VMStarting} {
		err := w.Store.Tx(ctx, func(tx *store.Tx) error {
			r, err := tx.VM(ctx, name)
			if err != nil {
				return err
			}
			r.State = state
			return tx.PutVM(ctx, r)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.restart()
	for _, vm := range []api.VM{creating, starting} {
		if processRuns(vm.PID) {
			t.Errorf("the VMM of %s's interrupted boot still runs", vm.Name)
		}
	}
	if _, err := w.D.VM(ctx, "creating"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the half-created vm still has a row (err %v)", err)
	}
	for _, dir := range []string{creating.Dir, creating.RuntimeDir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the half-created vm's %s is still there (%v)", dir, err)
		}
	}
	got, err := w.D.VM(ctx, "starting")
	if err != nil || got.State != api.VMStopped || !strings.Contains(got.LastError, "booting") {
		t.Fatalf("vm whose start was interrupted = %+v, %v; want stopped, saying why", got, err)
	}
	if _, err := w.D.StartVM(ctx, "starting", nil); err != nil {
		t.Fatalf("starting it again: %v", err)
	}
}

// processRuns reports whether pid names a process that has not exited (a
// zombie has). vmm.Alive needs the process's start time, which the API
// does not give.
func processRuns(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
