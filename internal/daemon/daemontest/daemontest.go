// Package daemontest builds a real daemon service on temporary state with
// the fake VMM driver (internal/vmm/vmmfake), for tests of the layers that
// wrap the daemon (API server, web UI) without booting guests.
package daemontest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/ext4"
	"banger/internal/paths"
	"banger/internal/store"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// World is a daemon on temporary state with the fake driver and an image
// named "default".
type World struct {
	D      *daemon.Daemon
	Driver *vmmfake.Driver
	Layout paths.Layout
	Store  *store.Store
	// Opts are the daemon's options; Restart applies changes to them.
	Opts daemon.Options
	// Agent is the content of the guest agent binary VMs get.
	Agent []byte
	// Rootfs is the default image's root filesystem.
	Rootfs string
}

// New starts the daemon; mut, when set, adjusts its options first. It
// skips t when the ext4 tools VM creation needs are missing. The daemon is
// closed and every fake VMM process killed when t ends.
func New(t testing.TB, mut func(*daemon.Options)) *World {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	rt, err := os.MkdirTemp("", "bgd") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	layout := paths.New(filepath.Join(dir, "config"), filepath.Join(dir, "state"), filepath.Join(dir, "cache"), rt)
	if err := layout.Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), layout.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &World{Driver: vmmfake.New(filepath.Join(dir, "guests")), Layout: layout, Store: st, Agent: []byte("#!agent binary stand-in\n")}
	agentPath := filepath.Join(dir, "banger-vsock-agent")
	os.WriteFile(agentPath, w.Agent, 0o755)
	stop := vmm.StopTimeouts{Agent: 2 * time.Second, VMM: 2 * time.Second, Term: time.Second}
	cfg := config.Default()
	// Tests that want the default image's automatic template ask for it.
	cfg.WarmTemplates = false
	w.Opts = daemon.Options{
		Layout: layout, Config: cfg, Store: st, Logger: slog.New(slog.DiscardHandler),
		Driver: w.Driver, AgentBinary: agentPath, SSHPublicKey: "ssh-ed25519 AAAAtestkey banger\n",
		BootTimeout: 2 * time.Second, StopTimeouts: &stop,
	}
	if mut != nil {
		mut(&w.Opts)
	}
	w.Restart(t)
	t.Cleanup(func() {
		if w.D != nil {
			w.D.Close()
		}
		for _, h := range w.Driver.Live() {
			syscall.Kill(h.PID, syscall.SIGKILL)
		}
		w.Driver.Discard()
	})
	w.RegisterImage(t, "default")
	return w
}

// Restart replaces the daemon with a new one on the same state and with
// the current Opts, as after a daemon restart: VM processes keep running.
func (w *World) Restart(t testing.TB) {
	t.Helper()
	if w.D != nil {
		w.D.Close()
		w.D = nil
	}
	d, err := daemon.New(context.Background(), w.Opts)
	if err != nil {
		t.Fatal(err)
	}
	w.D = d
}

// RegisterImage registers an image with a small ext4 root filesystem and
// an ELF header as its kernel.
func (w *World) RegisterImage(t testing.TB, name string) {
	t.Helper()
	dir := t.TempDir()
	root, kernel := filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "vmlinux")
	if err := ext4.Create(context.Background(), root, 32<<20, "root"); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 64) // the smallest ELF header image validation accepts
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	hdr[16], hdr[18], hdr[20] = 2, 62, 1
	os.WriteFile(kernel, hdr, 0o644)
	if _, err := w.D.RegisterImage(context.Background(), api.RegisterImageRequest{Name: name, Rootfs: root, Kernel: kernel}); err != nil {
		t.Fatal(err)
	}
	w.Rootfs = root
}

// CreateVM creates and boots a VM from the default image.
func (w *World) CreateVM(t *testing.T, name string) api.VM {
	t.Helper()
	vm, err := w.D.CreateVM(context.Background(), api.CreateVMRequest{Name: name, DiskBytes: 64 << 20}, nil)
	if err != nil {
		t.Fatalf("creating vm %s: %v", name, err)
	}
	return vm
}

// WaitState polls until the VM is in state want, failing t after a
// generous deadline.
func (w *World) WaitState(t *testing.T, name string, want api.VMState) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm, err := w.D.VM(context.Background(), name)
		if err == nil && vm.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm %s is %s (%v), want %s", name, vm.State, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
