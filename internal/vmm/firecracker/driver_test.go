package firecracker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
	"banger/internal/vmmtest"
)

func TestConformance(t *testing.T) {
	vmmtest.Run(t, vmmtest.Setup{
		NewDriver: func(t *testing.T) vmm.Driver { return standIn(t, fcstandin.Options{}) },
		Spec:      newSpec,
		Ping:      ping,
		Boot:      time.Minute,
		Remember:  rememberSession,
		Recall:    recallSession,
	})
}

// create makes a VM that is killed when the test ends.
func create(t *testing.T, d *firecracker.Driver, spec vmm.Spec) *vmm.Handle {
	t.Helper()
	h, err := d.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	return h
}

// bootSteps is every request Create sends, as the stand-in recorded it
// during a successful Create.
func bootSteps(t *testing.T) []fcstandin.Recorded {
	t.Helper()
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Record: rec})
	create(t, d, newSpec(t))
	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	var steps []fcstandin.Recorded
	seen := map[string]bool{}
	for _, req := range r.Requests {
		if key := req.Method + " " + req.Path; !seen[key] {
			seen[key] = true
			steps = append(steps, req)
		}
	}
	// GET /, GET /version, logger, metrics, machine, boot source, two
	// drives, network, vsock.
	const want = 10
	if len(steps) < want {
		t.Fatalf("Create sent %d configuration requests, want at least %d: %+v", len(steps), want, steps)
	}
	return steps
}

// TestCreateFailureAtEachStep makes Firecracker fail every request of the
// boot sequence, before and after carrying it out (so the vsock socket is
// bound when its request fails), and crash on it: Create must fail, kill
// the process and leave the runtime dir empty.
func TestCreateFailureAtEachStep(t *testing.T) {
	for _, step := range bootSteps(t) {
		key := step.Method + " " + step.Path
		for _, mode := range []string{"fail", "fail-after", "crash"} {
			t.Run(mode+" "+key, func(t *testing.T) {
				rec := filepath.Join(t.TempDir(), "record.jsonl")
				opts := fcstandin.Options{Record: rec}
				switch mode {
				case "fail", "fail-after":
					opts.Fail = []fcstandin.Failure{{Method: step.Method, Path: step.Path, Status: 500, After: mode == "fail-after"}}
				case "crash":
					opts.Crash = key
				}
				d := standIn(t, opts)
				spec := newSpec(t)
				h, err := d.Create(context.Background(), spec)
				if err == nil {
					d.Kill(context.Background(), h)
					t.Fatalf("Create succeeded although %s %s", mode, key)
				}
				var apiErr *firecracker.APIError
				if mode != "crash" && (!errors.As(err, &apiErr) || apiErr.StatusCode != 500) {
					t.Errorf("Create error = %v, want the injected 500", err)
				}
				assertNothingLeft(t, rec, spec)
			})
		}
	}
}

func TestStartFailure(t *testing.T) {
	d := standIn(t, fcstandin.Options{Fail: []fcstandin.Failure{{Method: "PUT", Path: "/actions", Status: 400}}})
	h := create(t, d, newSpec(t))
	var apiErr *firecracker.APIError
	if err := d.Start(context.Background(), h); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Errorf("Start = %v, want Firecracker's 400", err)
	}
}

func TestCreateRefusesOldFirecracker(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Version: "1.10.0", Record: rec})
	spec := newSpec(t)
	_, err := d.Create(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "needs v1.15 or newer") {
		t.Fatalf("Create with Firecracker 1.10 = %v, want a refusal naming v1.15", err)
	}
	assertNothingLeft(t, rec, spec)
}

func TestCreateFailureAtStartup(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	d := standIn(t, fcstandin.Options{Crash: "startup", Record: rec})
	spec := newSpec(t)
	_, err := d.Create(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "exited before serving its api socket") {
		t.Fatalf("Create = %v, want firecracker exiting before its api socket", err)
	}
	if !strings.Contains(err.Error(), "crashing at startup") {
		t.Errorf("Create error %q does not carry firecracker's output", err)
	}
	assertNothingLeft(t, rec, spec)
}

func TestCreateInvalidSpec(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	for name, mutate := range map[string]func(*vmm.Spec){
		"dash in disk id": func(s *vmm.Spec) { s.Disks[1].ID = "work-disk" },
		"no cpus":         func(s *vmm.Spec) { s.CPUs = 0 },
		"reserved cid":    func(s *vmm.Spec) { s.VsockCID = 2 },
		"no disks":        func(s *vmm.Spec) { s.Disks = nil },
		"long runtime dir": func(s *vmm.Spec) {
			s.RuntimeDir = filepath.Join(s.RuntimeDir, strings.Repeat("d", 100))
			os.Mkdir(s.RuntimeDir, 0o700)
		},
	} {
		spec := newSpec(t)
		mutate(&spec)
		if _, err := d.Create(context.Background(), spec); err == nil {
			t.Errorf("%s: Create succeeded", name)
		}
		if left := runtimeLeftovers(t, spec.RuntimeDir); len(left) > 0 {
			t.Errorf("%s: runtime dir holds %v", name, left)
		}
	}
}

// assertNothingLeft checks every stand-in process of rec is gone and the
// runtime dir is empty.
func assertNothingLeft(t *testing.T, rec string, spec vmm.Spec) {
	t.Helper()
	r, err := fcstandin.ReadRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range r.PIDs {
		if err := syscall.Kill(pid, 0); err == nil {
			if st, err := vmm.ProcStartTime(pid); err == nil {
				t.Errorf("stand-in pid %d (start %d) still runs", pid, st)
			}
		}
	}
	if left := runtimeLeftovers(t, spec.RuntimeDir); len(left) > 0 {
		t.Errorf("runtime dir holds %v", left)
	}
}

func TestStaleSocketsAreReplaced(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	spec := newSpec(t)
	for _, f := range []string{"api.sock", "vsock.sock", "firecracker.pid"} {
		os.WriteFile(filepath.Join(spec.RuntimeDir, f), []byte("stale"), 0o600)
	}
	h := create(t, d, spec)
	if err := d.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(spec.RuntimeDir, "firecracker.pid"))
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(h.PID) {
		t.Errorf("pid file = %q, %v; want %d", data, err, h.PID)
	}
}

// TestDetached checks the VMM runs in a session of its own, so it
// outlives the daemon, with its identity in the handle.
func TestDetached(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	h := create(t, d, newSpec(t))
	sid, err := unix.Getsid(h.PID)
	if err != nil || sid != h.PID {
		t.Errorf("session of pid %d = %d, %v; want its own", h.PID, sid, err)
	}
	if h.Driver != "firecracker" || h.StartTime == 0 || h.Sockets["api"] == "" || h.Sockets["vsock"] == "" {
		t.Errorf("handle = %+v", h)
	}
}

// TestAdoptPersistedHandle: the daemon stores the handle as JSON and, after
// a restart, a new driver adopts it, reaches the agent and stops the VM.
func TestAdoptPersistedHandle(t *testing.T) {
	d1 := standIn(t, fcstandin.Options{})
	h := create(t, d1, newSpec(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d1.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var stored vmm.Handle
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	d2 := firecracker.New(firecracker.Options{Binary: "/nonexistent/firecracker"}) // adopting needs no binary
	if err := d2.Adopt(ctx, &stored); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	conn, err := d2.DialAgent(ctx, &stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, conn); err != nil {
		t.Fatalf("agent after adoption: %v", err)
	}
	if err := d2.Stop(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if err := d2.Wait(ctx, &stored); err != nil {
		t.Fatal(err)
	}
}

// TestCrashAfterBoot: Firecracker dies right after booting the guest.
// Wait notices, Adopt and DialAgent say ErrNotRunning.
func TestCrashAfterBoot(t *testing.T) {
	d := standIn(t, fcstandin.Options{Crash: "after-boot"})
	h := create(t, d, newSpec(t))
	ctx := context.Background()
	if err := d.Start(ctx, h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	assertDead(t, d, h)
}

// TestKilledWhileRunning: something outside banger kills Firecracker.
func TestKilledWhileRunning(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	spec := newSpec(t)
	h := create(t, d, spec)
	if err := d.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(h.PID, syscall.SIGKILL)
	assertDead(t, d, h)
	// What a dead VMM leaves behind goes with Release.
	if err := d.Release(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if left := runtimeLeftovers(t, spec.RuntimeDir); len(left) > 0 {
		t.Errorf("runtime dir after Release holds %v", left)
	}
}

func assertDead(t *testing.T, d *firecracker.Driver, h *vmm.Handle) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Wait(ctx, h); err != nil {
		t.Fatalf("Wait after the crash: %v", err)
	}
	if err := d.Adopt(ctx, h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt after the crash = %v, want ErrNotRunning", err)
	}
	if _, err := d.DialAgent(ctx, h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("DialAgent after the crash = %v, want ErrNotRunning", err)
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Errorf("Kill after the crash = %v, want nil", err)
	}
}

// TestAdoptChecksTheAPI: a live process with the right pid and start
// time that does not answer Firecracker's API is not adopted.
func TestAdoptChecksTheAPI(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	h := create(t, d, newSpec(t))
	os.Remove(h.Sockets["api"])
	err := d.Adopt(context.Background(), h)
	if err == nil || errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt without an api socket = %v, want an api error", err)
	}
	other := *h
	other.Driver = "qemu"
	if err := d.Adopt(context.Background(), &other); err == nil {
		t.Error("Adopt of a qemu handle succeeded")
	}
}

// TestAdoptRefusesNotStarted: a VMM configured but never booted (the
// daemon died between Create and Start) answers its API, but there is no
// guest to adopt.
func TestAdoptRefusesNotStarted(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	h := create(t, d, newSpec(t))
	err := d.Adopt(context.Background(), h)
	if !errors.Is(err, firecracker.ErrNotStarted) || !strings.Contains(err.Error(), `"Not started"`) {
		t.Errorf("Adopt before Start = %v, want ErrNotStarted naming the state", err)
	}
	if errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt before Start = %v: the process lives, so not ErrNotRunning", err)
	}
	if err := d.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if err := d.Adopt(context.Background(), h); err != nil {
		t.Errorf("Adopt after Start = %v", err)
	}
}

// TestAPITimeout: a Firecracker whose API socket accepts but never
// answers fails the request after APITimeout instead of hanging Start.
func TestAPITimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	st, _ := vmm.ProcStartTime(os.Getpid())
	h := &vmm.Handle{Driver: "firecracker", PID: os.Getpid(), StartTime: st, Sockets: map[string]string{"api": sock}}
	d := firecracker.New(firecracker.Options{APITimeout: 200 * time.Millisecond})
	begin := time.Now()
	err = d.Start(context.Background(), h)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("Start on a wedged api socket = %v, want a timeout", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Start took %s, want about the 200ms timeout", took)
	}
}

// TestCreateWedgedAPI: Firecracker stops answering in the middle of the
// configuration; Create gives up after APITimeout and cleans up.
func TestCreateWedgedAPI(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	bin := standInBinary(t, fcstandin.Options{Hang: "PUT /drives/rootfs", Record: rec})
	d := firecracker.New(firecracker.Options{Binary: bin, APITimeout: 300 * time.Millisecond})
	spec := newSpec(t)
	h, err := d.Create(context.Background(), spec)
	if err == nil {
		d.Kill(context.Background(), h)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attaching drive rootfs") {
		t.Fatalf("Create with a wedged api = %v, want a timeout attaching the drive", err)
	}
	assertNothingLeft(t, rec, spec)
}

// TestStopEscalation: a guest that ignores Ctrl-Alt-Del keeps running
// after Stop; the daemon's next step, SIGTERM, ends it.
func TestStopEscalation(t *testing.T) {
	d := standIn(t, fcstandin.Options{IgnoreCtrlAltDel: true})
	h := create(t, d, newSpec(t))
	ctx := context.Background()
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, h); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := d.Adopt(ctx, h); err != nil {
		t.Fatalf("VM gone after an ignored Ctrl-Alt-Del: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := vmm.Terminate(tctx, h, 30*time.Second); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if vmm.Alive(h.PID, h.StartTime) {
		t.Error("alive after Terminate")
	}
}

func TestStopBeforeStart(t *testing.T) {
	d := standIn(t, fcstandin.Options{})
	h := create(t, d, newSpec(t))
	err := d.Stop(context.Background(), h)
	var apiErr *firecracker.APIError
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.FaultMessage, "before starting the microVM") {
		t.Errorf("Stop before Start = %v, want Firecracker's pre-boot refusal", err)
	}
}

func TestCapabilities(t *testing.T) {
	kvm := filepath.Join(t.TempDir(), "kvm")
	os.WriteFile(kvm, nil, 0o600)
	got := firecracker.New(firecracker.Options{KVMDevice: kvm}).Capabilities(context.Background())
	if want := (vmm.Capabilities{Vsock: true, Metrics: true, KVM: true}); got != want {
		t.Errorf("Capabilities with a usable KVM device = %+v, want %+v", got, want)
	}
	got = firecracker.New(firecracker.Options{KVMDevice: kvm + "-missing"}).Capabilities(context.Background())
	if got.KVM {
		t.Error("KVM reported without a KVM device")
	}
}

func TestMissingBinary(t *testing.T) {
	d := firecracker.New(firecracker.Options{Binary: filepath.Join(t.TempDir(), "firecracker")})
	_, err := d.Create(context.Background(), newSpec(t))
	if err == nil || !strings.Contains(err.Error(), "firecracker_bin") {
		t.Errorf("Create without a binary = %v, want advice to set firecracker_bin", err)
	}
}
