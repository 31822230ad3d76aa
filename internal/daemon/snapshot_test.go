package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/daemon"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// startCounter starts a session in vm that writes an ever-growing count
// to a file and returns a reader of that count.
func startCounter(t *testing.T, w *world, vm string) func() int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "count")
	script := fmt.Sprintf("i=0; while :; do i=$((i+1)); echo $i > %s.tmp; mv %s.tmp %s; sleep 0.02; done", path, path, path)
	if _, err := w.D.StartSession(context.Background(), vm, api.StartSessionRequest{Name: "counter", Argv: []string{"sh", "-c", script}}); err != nil {
		t.Fatal(err)
	}
	read := func() int {
		b, _ := os.ReadFile(path)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	waitFor(t, "the counter to count", func() bool { return read() > 3 })
	return read
}

// assertFrozen checks that the counter does not move.
func assertFrozen(t *testing.T, count func() int, what string) int {
	t.Helper()
	a := count()
	time.Sleep(300 * time.Millisecond)
	if b := count(); b != a {
		t.Errorf("the counter moved from %d to %d while the vm was %s", a, b, what)
	}
	return a
}

func TestPauseAndResume(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("dev")
	count := startCounter(t, w, "dev")
	cl, err := w.D.Agent(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	paused, err := w.D.PauseVM(ctx, "dev")
	if err != nil || paused.State != api.VMPaused || paused.PID != vm.PID {
		t.Fatalf("PauseVM = %+v, %v; want paused, same process", paused, err)
	}
	if !w.Driver.Paused(vm.PID) {
		t.Error("the driver was not asked to pause the vm")
	}
	if _, err := w.D.PauseVM(ctx, "dev"); err != nil {
		t.Errorf("pausing a paused vm: %v", err)
	}
	before := assertFrozen(t, count, "paused")
	// A call on the connection the live table keeps waits for the resume.
	var answered sync.WaitGroup
	var infoErr error
	done := make(chan struct{})
	answered.Go(func() {
		_, infoErr = cl.Info(ctx)
		close(done)
	})
	select {
	case <-done:
		t.Error("the paused guest's agent answered")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := w.D.Agent(ctx, "dev"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "vm resume dev") {
		t.Errorf("Agent of a paused vm: %v; want a conflict naming 'vm resume'", err)
	}
	if _, err := w.D.StartVM(ctx, "dev", nil); err == nil || !strings.Contains(err.Error(), "vm resume dev") {
		t.Errorf("starting a paused vm: %v; want to be told to resume it", err)
	}
	resumed, err := w.D.ResumeVM(ctx, "dev")
	if err != nil || resumed.State != api.VMRunning || resumed.PID != vm.PID {
		t.Fatalf("ResumeVM = %+v, %v", resumed, err)
	}
	answered.Wait()
	if infoErr != nil {
		t.Errorf("the call made while paused failed after the resume: %v", infoErr)
	}
	waitFor(t, "the counter to go on", func() bool { return count() > before })
	if _, err := w.D.ResumeVM(ctx, "dev"); err != nil {
		t.Errorf("resuming a running vm: %v", err)
	}
	// A paused vm stops (it is thawed so that its guest hears the shutdown).
	if _, err := w.D.PauseVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if got, err := w.D.StopVM(ctx, "dev"); err != nil || got.State != api.VMStopped {
		t.Fatalf("stopping a paused vm = %+v, %v", got, err)
	}
	if w.Driver.AgentShutdowns() != 1 {
		t.Errorf("agent shutdowns = %d; want the paused guest stopped through its agent", w.Driver.AgentShutdowns())
	}
	if _, err := w.D.PauseVM(ctx, "dev"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("pausing a stopped vm: %v, want a conflict", err)
	}
}

func TestPausedVMSurvivesADaemonRestart(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("dev")
	if _, err := w.D.PauseVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	w.restart()
	got, err := w.D.VM(ctx, "dev")
	if err != nil || got.State != api.VMPaused || got.PID != vm.PID {
		t.Fatalf("after a restart the paused vm is %+v, %v; want paused, same process", got, err)
	}
	if _, err := w.D.Agent(ctx, "dev"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Agent of a re-adopted paused vm: %v, want a conflict", err)
	}
	if _, err := w.D.ResumeVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	cl, err := w.D.Agent(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Info(ctx); err != nil {
		t.Fatal(err)
	}
}

// plainDriver is a driver without snapshots.
type plainDriver struct{ vmm.Driver }

func TestSnapshotsUnsupportedByTheDriver(t *testing.T) {
	w := newWorld(t)
	w.Opts.Driver = plainDriver{w.Driver}
	w.restart()
	ctx := context.Background()
	w.create("dev")
	for what, call := range map[string]func() error{
		"pause":   func() error { _, err := w.D.PauseVM(ctx, "dev"); return err },
		"resume":  func() error { _, err := w.D.ResumeVM(ctx, "dev"); return err },
		"suspend": func() error { _, err := w.D.SuspendVM(ctx, "dev", nil); return err },
	} {
		if err := call(); !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "fake driver") {
			t.Errorf("%s with a driver without snapshots: %v; want unsupported, naming the driver", what, err)
		}
	}
	if vm, _ := w.D.VM(ctx, "dev"); vm.State != api.VMRunning {
		t.Errorf("vm is %s after the refusals, want running", vm.State)
	}
}

// fakeNet is a Network that records TAPs, for tests of what a VM holds.
type fakeNet struct {
	mu   sync.Mutex
	taps map[string]string
	n    int
}

func (f *fakeNet) Allocate(ctx context.Context, vm string) (netip.Addr, string, error) {
	a := netip.MustParseAddr("172.16.0.2")
	return a, network.MAC(a).String(), nil
}
func (f *fakeNet) ReleaseLease(ctx context.Context, vm string) error { return nil }
func (f *fakeNet) AcquireTAP(ctx context.Context, vm string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.taps[vm]; ok {
		return "", fmt.Errorf("vm %s holds %s already", vm, t)
	}
	f.n++
	f.taps[vm] = fmt.Sprintf("tap%d", f.n)
	return f.taps[vm], nil
}
func (f *fakeNet) ReleaseTAP(ctx context.Context, vm string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.taps, vm)
	return nil
}
func (f *fakeNet) tap(vm string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taps[vm]
}
func (f *fakeNet) KernelArgs(addr netip.Addr) []string {
	return []string{network.ArgIP + "=" + netip.PrefixFrom(addr, 24).String(), network.ArgGW + "=172.16.0.1"}
}
func (f *fakeNet) Addr(ctx context.Context, vm string) (netip.Addr, bool) {
	return netip.Addr{}, false
}
func (f *fakeNet) Addrs(ctx context.Context) (map[string]netip.Addr, error) { return nil, nil }
func (f *fakeNet) CheckConfig(ctx context.Context, running func(string) bool) error {
	return nil
}

func TestSuspendAndStartRestores(t *testing.T) {
	w := newWorld(t)
	nw := &fakeNet{taps: map[string]string{}}
	w.Opts.Network = nw
	w.restart()
	ctx := context.Background()
	vm := w.create("dev")
	if nw.tap("dev") == "" || vm.TAP == "" {
		t.Fatalf("running vm holds no tap (%q, %q)", nw.tap("dev"), vm.TAP)
	}
	count := startCounter(t, w, "dev")
	var steps []string
	p := func(e api.Event) { steps = append(steps, e.Step) }
	sus, err := w.D.SuspendVM(ctx, "dev", progress.Func(p))
	if err != nil {
		t.Fatal(err)
	}
	if sus.State != api.VMSuspended || sus.PID != 0 || sus.TAP != "" || sus.StateBytes <= 0 {
		t.Fatalf("suspended vm = %+v; want suspended, no process, no tap, its state's size", sus)
	}
	if got := strings.Join(steps, ","); !strings.Contains(got, "sync,pause,save") {
		t.Errorf("suspend progress steps %v; want the guest synced, then paused and saved", steps)
	}
	if len(w.Driver.Live()) != 0 || procRuns(vm.PID) {
		t.Error("a suspended vm still has its VMM process")
	}
	if !w.Driver.Released(vm.PID) {
		t.Error("the suspended vm's VMM files were not released")
	}
	if nw.tap("dev") != "" {
		t.Errorf("a suspended vm holds tap %s", nw.tap("dev"))
	}
	if _, err := os.Stat(filepath.Join(vm.Dir, vms.StateDir, "state.json")); err != nil {
		t.Errorf("no saved state next to the disks: %v", err)
	}
	saved := assertFrozen(t, count, "suspended")
	boots := w.Driver.Boots()

	w.restart()
	if got, _ := w.D.VM(ctx, "dev"); got.State != api.VMSuspended {
		t.Fatalf("after a daemon restart the vm is %s, want suspended", got.State)
	}
	if _, err := w.D.ResumeVM(ctx, "dev"); err == nil || !strings.Contains(err.Error(), "vm start dev") {
		t.Errorf("resuming a suspended vm: %v; want to be told to start it", err)
	}
	steps = nil
	got, err := w.D.StartVM(ctx, "dev", progress.Func(p))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.VMRunning || got.PID == 0 || got.PID == vm.PID || got.StateBytes != 0 {
		t.Fatalf("restored vm = %+v; want running in a new process", got)
	}
	if !strings.Contains(strings.Join(steps, ","), "restore") {
		t.Errorf("start progress steps %v; want a restore step", steps)
	}
	if w.Driver.Boots() != boots {
		t.Error("the suspended vm was booted, not restored")
	}
	if nw.tap("dev") == "" || nw.tap("dev") != got.TAP {
		t.Errorf("restored vm's tap %q, network's %q", got.TAP, nw.tap("dev"))
	}
	waitFor(t, "the counter to go on", func() bool { return count() > saved+3 })
	if c := count(); c < saved {
		t.Errorf("the counter restarted (%d, was %d)", c, saved)
	}
	ss, err := w.D.Sessions(ctx, "dev")
	if err != nil || len(ss) != 1 || ss[0].State != agentproto.SessionRunning {
		t.Errorf("sessions after the restore = %+v, %v; want the counter running", ss, err)
	}
	for _, d := range []string{vms.StateDir, "state.tmp", "state.used"} {
		if _, err := os.Stat(filepath.Join(vm.Dir, d)); err == nil {
			t.Errorf("%s is left after the restore", d)
		}
	}
	// The restored VM is watched like a booted one.
	if _, err := w.D.StopVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if w.Driver.AgentShutdowns() != 1 {
		t.Error("the restored vm did not stop through its reconnected agent")
	}
}

func TestDeleteSuspendedVMRemovesItsState(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	if _, err := w.D.SuspendVM(ctx, "dev", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.D.DeleteVM(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	w.assertGone("dev")
}

func TestSuspendFailureLeavesTheVMAsItWas(t *testing.T) {
	for _, step := range []string{vmmfake.StepPause, vmmfake.StepSave} {
		t.Run(step, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			vm := w.create("dev")
			count := startCounter(t, w, "dev")
			w.Driver.Fail(step, vmmfake.ErrInjected)
			if _, err := w.D.SuspendVM(ctx, "dev", nil); err == nil || !strings.Contains(err.Error(), "running as before") {
				t.Fatalf("failed suspend: %v; want an error saying the vm runs", err)
			}
			got, _ := w.D.VM(ctx, "dev")
			if got.State != api.VMRunning || got.PID != vm.PID || w.Driver.Paused(vm.PID) {
				t.Errorf("after a failed suspend the vm is %+v (paused %v); want running as before", got, w.Driver.Paused(vm.PID))
			}
			for _, d := range []string{vms.StateDir, "state.tmp"} {
				if _, err := os.Stat(filepath.Join(vm.Dir, d)); err == nil {
					t.Errorf("a failed suspend left %s", d)
				}
			}
			c := count()
			waitFor(t, "the counter to go on", func() bool { return count() > c })
			cl, err := w.D.Agent(ctx, "dev")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Info(ctx); err != nil {
				t.Errorf("the agent after a failed suspend: %v", err)
			}
		})
	}
}

func TestSuspendFailureOfAPausedVMLeavesItPaused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("dev")
	if _, err := w.D.PauseVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	w.Driver.Fail(vmmfake.StepKill, vmmfake.ErrInjected)
	if _, err := w.D.SuspendVM(ctx, "dev", nil); err == nil || !strings.Contains(err.Error(), "paused as before") {
		t.Fatalf("failed suspend: %v; want an error saying the vm is paused", err)
	}
	w.Driver.Fail(vmmfake.StepKill, nil)
	if got, _ := w.D.VM(ctx, "dev"); got.State != api.VMPaused || !w.Driver.Paused(vm.PID) {
		t.Errorf("after a failed suspend the vm is %s (driver paused %v); want paused", got.State, w.Driver.Paused(vm.PID))
	}
	if _, err := w.D.Agent(ctx, "dev"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Agent after a failed suspend of a paused vm: %v; want the paused refusal", err)
	}
	if _, err := os.Stat(filepath.Join(vm.Dir, vms.StateDir)); err == nil {
		t.Error("a failed suspend kept its state")
	}
	if _, err := w.D.ResumeVM(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
}

// editState rewrites the saved state's description.
func editState(t *testing.T, dir string, edit func(*vmm.State)) {
	t.Helper()
	path := filepath.Join(dir, vms.StateDir, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st vmm.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	edit(&st)
	b, _ = json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStartNeverColdBootsOverASavedState(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	vm := w.create("dev")
	startCounter(t, w, "dev")
	if _, err := w.D.SuspendVM(ctx, "dev", nil); err != nil {
		t.Fatal(err)
	}
	boots := w.Driver.Boots()
	// A state written by another VMM version, which the driver refuses.
	editState(t, vm.Dir, func(st *vmm.State) { st.VMMVersion = "fake-0" })
	_, err := w.D.StartVM(ctx, "dev", nil)
	if err == nil || !strings.Contains(err.Error(), "fake-0") || !strings.Contains(err.Error(), "vm start --cold dev") {
		t.Fatalf("starting over a state the driver refuses: %v; want the driver's reason and the --cold choice", err)
	}
	got, _ := w.D.VM(ctx, "dev")
	if got.State != api.VMSuspended || got.PID != 0 || w.Driver.Boots() != boots || len(w.Driver.Live()) != 0 {
		t.Errorf("after a refused restore the vm is %+v (boots %d, was %d); want suspended, nothing running", got, w.Driver.Boots(), boots)
	}
	if _, err := os.Stat(filepath.Join(vm.Dir, vms.StateDir)); err != nil {
		t.Errorf("a refused restore lost the state: %v", err)
	}
	// The same choice when the restore fails in the driver.
	editState(t, vm.Dir, func(st *vmm.State) { st.VMMVersion = vmmfake.Version })
	w.Driver.Fail(vmmfake.StepRestore, vmmfake.ErrInjected)
	if _, err := w.D.StartVM(ctx, "dev", nil); err == nil || !strings.Contains(err.Error(), "--cold") {
		t.Fatalf("a failing restore: %v; want the --cold choice", err)
	}
	w.Driver.Fail(vmmfake.StepRestore, nil)
	cold, err := w.D.StartVMCold(ctx, "dev", nil)
	if err != nil || cold.State != api.VMRunning || w.Driver.Boots() != boots+1 {
		t.Fatalf("StartVMCold = %+v, %v (boots %d, was %d); want a fresh boot", cold, err, w.Driver.Boots(), boots)
	}
	if _, err := os.Stat(filepath.Join(vm.Dir, vms.StateDir)); err == nil {
		t.Error("a cold start kept the saved state")
	}
	if ss, _ := w.D.Sessions(ctx, "dev"); len(ss) != 0 && ss[0].State == agentproto.SessionRunning {
		t.Errorf("the cold-booted vm runs the suspended one's sessions: %+v", ss)
	}
}

// setRow changes a VM's row as a crashed daemon would have left it.
func (w *world) setRow(name string, edit func(*store.VM)) {
	w.t.Helper()
	ctx := context.Background()
	err := w.Store.Tx(ctx, func(tx *store.Tx) error {
		r, err := tx.VM(ctx, name)
		if err != nil {
			return err
		}
		edit(&r)
		return tx.PutVM(ctx, r)
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// saveByHand does what a suspend does up to the crash point: the VM's
// VMM paused and, with complete, its state saved as the manager commits
// it; without, a partial state in the temporary directory.
func saveByHand(t *testing.T, w *world, vm api.VM, complete bool) {
	t.Helper()
	ctx := context.Background()
	h := &vmm.Handle{Driver: "fake", PID: vm.PID, RuntimeDir: vm.RuntimeDir}
	st, _ := vmm.ProcStartTime(vm.PID)
	h.StartTime = st
	if err := w.Driver.Pause(ctx, h); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(vm.Dir, "state.tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if !complete {
		os.WriteFile(filepath.Join(tmp, "memory"), []byte("{part"), 0o600)
		return
	}
	s, err := w.Driver.SaveState(ctx, h, tmp)
	if err != nil {
		t.Fatal(err)
	}
	s.Dir = filepath.Join(vm.Dir, vms.StateDir)
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(tmp, "state.json"), b, 0o600)
	if err := os.Rename(tmp, s.Dir); err != nil {
		t.Fatal(err)
	}
}

func TestSuspendInterruptedByADaemonCrash(t *testing.T) {
	t.Run("before the state was complete", func(t *testing.T) {
		w := &world{World: newWorld(t).World, t: t}
		ctx := context.Background()
		vm := w.create("dev")
		count := startCounter(t, w, "dev")
		saveByHand(t, w, vm, false)
		w.D.Close() // the crash
		w.setRow("dev", func(r *store.VM) { r.State = api.VMSuspending })
		w.restart()
		got, err := w.D.VM(ctx, "dev")
		if err != nil || got.State != api.VMRunning || got.PID != vm.PID || w.Driver.Paused(vm.PID) {
			t.Fatalf("vm caught mid-suspend = %+v, %v (paused %v); want running on in its process", got, err, w.Driver.Paused(vm.PID))
		}
		if _, err := os.Stat(filepath.Join(vm.Dir, "state.tmp")); err == nil {
			t.Error("the partial state is still there")
		}
		c := count()
		waitFor(t, "the counter to go on", func() bool { return count() > c })
		cl, err := w.D.Agent(ctx, "dev")
		if err == nil {
			_, err = cl.Info(ctx)
		}
		if err != nil {
			t.Errorf("the agent of the resumed vm: %v", err)
		}
		// The vm's process is watched again.
		if _, err := w.D.StopVM(ctx, "dev"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("after the state was complete", func(t *testing.T) {
		w := &world{World: newWorld(t).World, t: t}
		nw := &fakeNet{taps: map[string]string{}}
		w.Opts.Network = nw
		w.restart()
		ctx := context.Background()
		vm := w.create("dev")
		count := startCounter(t, w, "dev")
		saveByHand(t, w, vm, true)
		w.D.Close()
		w.setRow("dev", func(r *store.VM) { r.State = api.VMSuspending })
		w.restart()
		got, err := w.D.VM(ctx, "dev")
		if err != nil || got.State != api.VMSuspended || got.PID != 0 || got.TAP != "" {
			t.Fatalf("vm caught after its save = %+v, %v; want suspended", got, err)
		}
		if procRuns(vm.PID) {
			t.Error("its VMM process still runs")
		}
		if nw.tap("dev") != "" {
			t.Error("it still holds its tap")
		}
		saved := count()
		if _, err := w.D.StartVM(ctx, "dev", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the counter to go on", func() bool { return count() > saved })
	})
	t.Run("with the process gone and no state", func(t *testing.T) {
		w := &world{World: newWorld(t).World, t: t}
		ctx := context.Background()
		vm := w.create("dev")
		saveByHand(t, w, vm, false)
		w.D.Close()
		w.setRow("dev", func(r *store.VM) { r.State = api.VMSuspending })
		syscall.Kill(vm.PID, syscall.SIGKILL)
		waitFor(t, "the VMM to die", func() bool { return !procRuns(vm.PID) })
		w.restart()
		got, err := w.D.VM(ctx, "dev")
		if err != nil || got.State != api.VMStopped || !strings.Contains(got.LastError, "suspended") {
			t.Fatalf("vm = %+v, %v; want stopped, saying why", got, err)
		}
		if _, err := w.D.StartVM(ctx, "dev", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRestoreInterruptedByADaemonCrash(t *testing.T) {
	suspendThenRestoreByHand := func(t *testing.T, w *world) (api.VM, func() int, int) {
		ctx := context.Background()
		vm := w.create("dev")
		count := startCounter(t, w, "dev")
		if _, err := w.D.SuspendVM(ctx, "dev", nil); err != nil {
			t.Fatal(err)
		}
		saved := count()
		b, err := os.ReadFile(filepath.Join(vm.Dir, vms.StateDir, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st vmm.State
		json.Unmarshal(b, &st)
		w.D.Close() // the crash, right after the driver restored it
		h, err := w.Driver.Restore(ctx, vmm.Spec{RuntimeDir: vm.RuntimeDir, CPUs: vm.CPUs, MemoryMiB: vm.MemoryMiB}, st)
		if err != nil {
			t.Fatal(err)
		}
		w.setRow("dev", func(r *store.VM) { r.State, r.Handle = api.VMRestoring, h })
		return api.VM{PID: h.PID, Dir: vm.Dir}, count, saved
	}
	t.Run("before the guest ran", func(t *testing.T) {
		w := &world{World: newWorld(t).World, t: t}
		ctx := context.Background()
		restored, count, saved := suspendThenRestoreByHand(t, w)
		w.restart()
		got, err := w.D.VM(ctx, "dev")
		if err != nil || got.State != api.VMSuspended || got.PID != 0 {
			t.Fatalf("vm caught mid-restore = %+v, %v; want stopped with its state kept (suspended)", got, err)
		}
		if procRuns(restored.PID) {
			t.Error("the half-restored VMM still runs")
		}
		if _, err := os.Stat(filepath.Join(restored.Dir, vms.StateDir)); err != nil {
			t.Fatalf("the state was not kept: %v", err)
		}
		if _, err := w.D.StartVM(ctx, "dev", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the counter to go on", func() bool { return count() > saved })
	})
	t.Run("after the guest ran on", func(t *testing.T) {
		w := &world{World: newWorld(t).World, t: t}
		ctx := context.Background()
		restored, _, _ := suspendThenRestoreByHand(t, w)
		if err := os.Rename(filepath.Join(restored.Dir, vms.StateDir), filepath.Join(restored.Dir, "state.used")); err != nil {
			t.Fatal(err)
		}
		w.restart()
		got, err := w.D.VM(ctx, "dev")
		if err != nil || got.State != api.VMStopped || !strings.Contains(got.LastError, "discarded") {
			t.Fatalf("vm caught after its guest ran on = %+v, %v; want stopped, its state discarded", got, err)
		}
		if procRuns(restored.PID) {
			t.Error("the restored VMM still runs")
		}
		for _, d := range []string{vms.StateDir, "state.used"} {
			if _, err := os.Stat(filepath.Join(restored.Dir, d)); err == nil {
				t.Errorf("%s is still there", d)
			}
		}
		boots := w.Driver.Boots()
		if _, err := w.D.StartVM(ctx, "dev", nil); err != nil || w.Driver.Boots() != boots+1 {
			t.Fatalf("start after = %v (boots %d, was %d); want a fresh boot", err, w.Driver.Boots(), boots)
		}
	})
}

// TestAutoStopSparesAPausedVM: a paused VM is not sampled, so neither
// judged idle nor held busy; its stats say paused.
func TestAutoStopSparesAPausedVM(t *testing.T) {
	w := newPollWorld(t, func(o *daemon.Options) {
		o.Config.AutoStopStaleAfter = 300 * time.Millisecond
		o.IdleCPUPercent = 101
	})
	ctx := context.Background()
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "frozen", DiskBytes: 64 << 20, KeepAlive: true}, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := w.D.Agent(ctx, "frozen")
	if err != nil {
		t.Fatal(err)
	}
	if gs, err := cl.Stats(ctx); err != nil || gs.SSHConnections > 0 {
		t.Skipf("the fake guest sees the host's ssh connections (%d, %v); auto-stop cannot be judged here", gs.SSHConnections, err)
	}
	if _, err := w.D.PauseVM(ctx, "frozen"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.SetKeepAlive(ctx, "frozen", false); err != nil {
		t.Fatal(err)
	}
	w.create("idle")
	waitState(t, w.D, "idle", api.VMStopped)
	time.Sleep(600 * time.Millisecond) // two stale-after spans more
	if vm, _ := w.D.VM(ctx, "frozen"); vm.State != api.VMPaused {
		t.Fatalf("the paused vm is %s, want paused", vm.State)
	}
	st := stats(t, w.D, "frozen", 0)
	if st.State != api.VMPaused || st.Busy != "" || st.AutoStopAt != nil {
		t.Errorf("paused vm's stats = %+v; want state paused, not busy, no auto-stop time", st)
	}
	assertAutoStopEvent(t, w, "frozen", false)
	// Resumed, it is judged again like any vm.
	if _, err := w.D.ResumeVM(ctx, "frozen"); err != nil {
		t.Fatal(err)
	}
	waitState(t, w.D, "frozen", api.VMStopped)
}

// A suspended VM's saved memory holds its guest's address and gateway:
// network settings changed under it are refused as under a running VM.
func TestNetworkChangeRefusedUnderASuspendedVM(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	seedLeasedVM(t, w, api.VMSuspended)
	w.D.Close()
	w.D = nil
	w.Opts.Config.CIDR = netip.MustParsePrefix("172.17.0.0/24")
	w.Opts.Config.BridgeIP = netip.MustParseAddr("172.17.0.1")
	w.Opts.Network = vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	d, err := daemon.New(ctx, w.Opts)
	if err == nil {
		d.Close()
		t.Fatal("the daemon accepted network settings changed under a suspended vm")
	}
	if !strings.Contains(err.Error(), "dev") {
		t.Errorf("refusal %v does not name the suspended vm", err)
	}
}

// procRuns reports whether a process with pid exists (vmm.Alive also
// wants its start time).
func procRuns(pid int) bool {
	_, err := vmm.ProcStartTime(pid)
	return err == nil
}
