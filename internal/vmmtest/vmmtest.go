// Package vmmtest is the conformance suite every vmm.Driver runs: the
// QEMU driver against real guests, the Firecracker driver against its
// spec-faithful stand-in.
package vmmtest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/vmm"
)

// Setup tells the suite how to make drivers and bootable specs.
type Setup struct {
	// NewDriver returns a fresh driver; the suite makes a second one to
	// play the daemon after a restart.
	NewDriver func(t *testing.T) vmm.Driver
	// Spec returns a bootable spec whose RuntimeDir exists; disks must be
	// private to the call.
	Spec func(t *testing.T) vmm.Spec
	// Ping proves that the guest agent transport answers on conn.
	Ping func(ctx context.Context, conn net.Conn) error
	// Boot bounds the wait for the agent after Start.
	Boot time.Duration
	// Remember and Recall are needed for drivers that implement
	// vmm.Snapshotter. Remember leaves token in the guest where only its
	// memory keeps it (a tmpfs file, a process, a variable of the agent);
	// Recall returns what the guest remembers, "" when nothing, as after
	// a cold boot. The suite uses them to tell a restored guest from a
	// cold-booted one.
	Remember func(ctx context.Context, conn net.Conn, token string) error
	Recall   func(ctx context.Context, conn net.Conn) (string, error)
}

// Run runs the suite.
func Run(t *testing.T, s Setup) {
	if s.Boot == 0 {
		s.Boot = 2 * time.Minute
	}
	t.Run("Capabilities", func(t *testing.T) { testCapabilities(t, s) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, s) })
	t.Run("KillAndWait", func(t *testing.T) { testKill(t, s) })
	t.Run("AdoptAfterRestart", func(t *testing.T) { testAdopt(t, s) })
	t.Run("AdoptRejectsStranger", func(t *testing.T) { testAdoptStranger(t, s) })
	t.Run("CreateFailureLeavesNothing", func(t *testing.T) { testCreateFailure(t, s) })
	t.Run("SnapshotRestore", func(t *testing.T) { testSnapshot(t, s) })
}

func create(t *testing.T, d vmm.Driver, spec vmm.Spec) *vmm.Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { d.Kill(context.Background(), h) })
	return h
}

// waitAgent dials and pings until the guest answers or boot time ends.
// A VM that dies on the way fails at once, with its console's tail.
func waitAgent(t *testing.T, s Setup, d vmm.Driver, h *vmm.Handle, spec vmm.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Boot)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		conn, err := d.DialAgent(ctx, h)
		if err == nil {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err = s.Ping(pctx, conn)
			pcancel()
			conn.Close()
			if err == nil {
				return
			}
		}
		last = err
		if errors.Is(err, vmm.ErrNotRunning) {
			t.Fatalf("vm died while booting: %v\nconsole:\n%s", err, tail(spec.ConsoleLog))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("guest agent did not answer within %s: %v\nconsole:\n%s", s.Boot, last, tail(spec.ConsoleLog))
}

func testLifecycle(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	spec := s.Spec(t)
	h := create(t, d, spec)
	if err := vmm.CheckAlive(h); err != nil {
		t.Fatalf("after Create the VMM process is not alive: %v", err)
	}
	ctx := context.Background()
	if err := d.Start(ctx, h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitAgent(t, s, d, h, spec)
	if err := d.Stop(ctx, h); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, s.Boot)
	defer cancel()
	if err := d.Wait(wctx, h); err != nil {
		t.Fatalf("Wait after Stop: %v (the guest did not power off)", err)
	}
	if err := d.Adopt(ctx, h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt of a stopped VM = %v, want ErrNotRunning", err)
	}
	if fi, err := os.Stat(spec.ConsoleLog); err != nil || fi.Size() == 0 {
		t.Errorf("console log %s is empty or missing (%v)", spec.ConsoleLog, err)
	}
}

// testCapabilities: what a driver claims, it implements.
func testCapabilities(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	caps := d.Capabilities(context.Background())
	_, reads := d.(vmm.MetricsReader)
	if caps.Metrics != reads {
		t.Errorf("Capabilities.Metrics = %v but implements vmm.MetricsReader = %v", caps.Metrics, reads)
	}
}

func testKill(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	h := create(t, d, s.Spec(t))
	ctx := context.Background()
	// The VMM outlives the daemon: its own session, not ours.
	own, _ := unix.Getsid(0)
	if sid, err := unix.Getsid(h.PID); err != nil || sid == own {
		t.Errorf("the VMM process runs in the daemon's session (sid %d, %v); it would die with it", sid, err)
	}
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if err := d.Wait(wctx, h); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on a running VM = %v, want the context's deadline", err)
	}
	cancel()
	if err := d.Kill(ctx, h); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if vmm.Alive(h.PID, h.StartTime) {
		t.Error("process alive after Kill")
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Errorf("second Kill = %v, want nil", err)
	}
	if err := d.Start(ctx, h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Start of a killed VM = %v, want ErrNotRunning", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if conn, err := d.DialAgent(dctx, h); !errors.Is(err, vmm.ErrNotRunning) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("DialAgent to a killed VM = %v, want ErrNotRunning", err)
	}
}

func testAdopt(t *testing.T, s Setup) {
	d1 := s.NewDriver(t)
	spec := s.Spec(t)
	h := create(t, d1, spec)
	ctx := context.Background()
	if err := d1.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, s, d1, h, spec)
	// A new driver instance is what the daemon has after a restart.
	d2 := s.NewDriver(t)
	if err := d2.Adopt(ctx, h); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	waitAgent(t, s, d2, h, spec)
	if err := d2.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func testAdoptStranger(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	// Our own pid with a wrong start time stands for a reused pid.
	st, _ := vmm.ProcStartTime(os.Getpid())
	h := &vmm.Handle{Driver: d.Name(), PID: os.Getpid(), StartTime: st + 1, RuntimeDir: t.TempDir()}
	if err := d.Adopt(context.Background(), h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt of a reused pid = %v, want ErrNotRunning", err)
	}
	h.PID = 0
	if err := d.Adopt(context.Background(), h); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Adopt of pid 0 = %v, want ErrNotRunning", err)
	}
}

func testCreateFailure(t *testing.T, s Setup) {
	d := s.NewDriver(t)
	spec := s.Spec(t)
	spec.Kernel = filepath.Join(t.TempDir(), "missing-vmlinux")
	if _, err := d.Create(context.Background(), spec); err == nil {
		t.Fatal("Create with a missing kernel succeeded")
	}
	ents, _ := os.ReadDir(spec.RuntimeDir)
	for _, e := range ents {
		t.Errorf("Create failure left %s in the runtime dir", e.Name())
	}
}

// tail returns the last 40 lines of a file.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
