// Package integration drives the real banger and bangerd binaries, built
// once per test run, against temporary HOME and XDG directories.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/client"
	"banger/internal/paths"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "banger-bin-")
	if err != nil {
		panic(err)
	}
	for _, b := range []string{"banger", "bangerd"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "banger/cmd/"+b)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b, err)
			os.Exit(1)
		}
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is one user's banger world: its own HOME and XDG directories.
type harness struct {
	t      *testing.T
	home   string
	env    []string
	layout paths.Layout
	cl     *client.Client
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	home := t.TempDir()
	// Unix socket paths are limited to 108 bytes: keep the runtime dir short.
	rt, err := os.MkdirTemp("", "bgrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	h := &harness{t: t, home: home}
	h.env = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_STATE_HOME="+filepath.Join(home, "state"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_RUNTIME_DIR="+rt,
		"BANGER_BANGERD="+filepath.Join(binDir, "bangerd"),
	)
	h.layout = paths.New(filepath.Join(home, "config", "banger"), filepath.Join(home, "state", "banger"),
		filepath.Join(home, "cache", "banger"), filepath.Join(rt, "banger"))
	h.cl = client.New(h.layout.SocketPath)
	t.Cleanup(h.stopDaemon)
	return h
}

// writeConfig writes config.toml.
func (h *harness) writeConfig(body string) {
	h.t.Helper()
	if err := os.MkdirAll(h.layout.ConfigDir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.layout.ConfigFile, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// banger runs the CLI and returns stdout, stderr and the exit code.
func (h *harness) banger(args ...string) (string, string, int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "banger"), args...)
	cmd.Env = h.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("running banger %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs the CLI and fails the test unless it exits 0.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.banger(args...)
	if code != 0 {
		h.t.Fatalf("banger %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// startDaemon starts bangerd directly (not through the CLI) and waits
// for it to answer; it returns the process.
func (h *harness) startDaemon() *exec.Cmd {
	h.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "bangerd"))
	cmd.Env = h.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := h.cl.Status(context.Background()); err == nil {
			return cmd
		}
		select {
		case <-done:
			h.t.Fatalf("bangerd exited during start: %s", errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	h.t.Fatal("bangerd did not answer within 20s")
	return nil
}

// stopDaemon stops any daemon of this harness and waits for it to go.
func (h *harness) stopDaemon() {
	st, err := h.cl.Status(context.Background())
	if err != nil {
		return
	}
	h.cl.Shutdown(context.Background())
	for i := 0; i < 400; i++ {
		if syscall.Kill(st.PID, 0) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
}

// mkExt4 creates an ext4 image of sizeMiB at path.
func mkExt4(t *testing.T, path string, sizeMiB int) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (apt-get install e2fsprogs)")
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "nodiscard", path, fmt.Sprintf("%dM", sizeMiB)).CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
}

// mkKernel writes a minimal ELF64 x86-64 executable header: enough for
// banger's kernel format check, which is all these tests need.
func mkKernel(t *testing.T, path string) {
	t.Helper()
	hdr := make([]byte, 4096)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	hdr[16] = 2  // e_type = ET_EXEC
	hdr[18] = 62 // e_machine = EM_X86_64
	hdr[20] = 1  // e_version
	if err := os.WriteFile(path, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
}
