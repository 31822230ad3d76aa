package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/agentproto"
)

const mib = 1 << 20

// TestStaticBinarySizeAndIdleRSS builds the agent the way images get it,
// runs it in dev mode on a unix socket, makes a few calls and checks the
// binary size and the resident memory against the 10 MiB budgets.
func TestStaticBinarySizeAndIdleRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	dir := t.TempDir()
	bin := buildAgent(t)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("binary size: %d bytes (%.2f MiB)", fi.Size(), float64(fi.Size())/mib)
	if fi.Size() >= 10*mib {
		t.Errorf("binary is %d bytes, over the 10 MiB budget", fi.Size())
	}
	if out, _ := exec.Command("file", bin).Output(); len(out) > 0 && !bytes.Contains(out, []byte("statically linked")) {
		t.Errorf("binary is not static: %s", out)
	}

	for _, tt := range []struct{ name, ssh string }{
		{"ssh off", "off"},
		{"builtin ssh", "builtin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rss := idleRSS(t, bin, filepath.Join(dir, tt.ssh), "--ssh", tt.ssh, "--ssh-listen", "127.0.0.1:0")
			t.Logf("idle RSS after info, exec and stats: %d KiB (%.2f MiB)", rss/1024, float64(rss)/mib)
			if rss >= 10*mib {
				t.Errorf("idle RSS is %d bytes, over the 10 MiB budget", rss)
			}
		})
	}
}

// idleRSS runs the agent in dev mode on a unix socket, connects, makes a
// few calls, lets it settle and returns its VmRSS.
func idleRSS(t *testing.T, bin, dir string, extra ...string) int64 {
	sock := filepath.Join(dir, "agent.sock")
	args := append([]string{"serve", "--init-mode=dev", "--listen", "unix:" + sock, "--state-dir", filepath.Join(dir, "state"),
		"--home", filepath.Join(dir, "home"), "--config-dir", filepath.Join(dir, "etc")}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := agentproto.Connect(ctx, agentproto.UnixDialer(sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != cmd.Process.Pid || info.InitMode != agentproto.InitModeDev {
		t.Errorf("info = %+v", info)
	}
	var out bytes.Buffer
	if st, err := c.Run(ctx, agentproto.ExecRequest{Argv: []string{"echo", "from the real binary"}}, agentproto.Stdio{Stdout: &out}); err != nil || !st.Success() {
		t.Fatalf("exec: %+v, %v", st, err)
	}
	if _, err := c.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	return vmRSS(t, cmd.Process.Pid)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildAgent builds the binary as images get it: static, stripped.
func buildAgent(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "agent-build")
		if buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(buildDir, "banger-vsock-agent"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "banger-vsock-agent")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func vmRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
