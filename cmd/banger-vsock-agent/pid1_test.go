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
	"syscall"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// TestPID1InNamespaces boots the real binary as PID 1 of fresh PID, mount,
// network and UTS namespaces, chrooted into a busybox root, the closest
// this host gets to an image without an init. It checks the early mounts,
// the agent child, PTYs on the new devpts, orphan reaping, and HUP and QUIT
// reaching the agent child through PID 1, which restarts it. Shutdown is
// left to the e2e tier: its final read-only remount of / would reach the
// host's filesystem from a chroot.
func TestPID1InNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and chroot")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs a static busybox: ", err)
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("needs chroot: ", err)
	}
	root := busyboxRoot(t, busybox, buildAgent(t))
	var console syncBuffer
	// The stray words stand for what the kernel passes init from its
	// command line; PID 1 must ignore them.
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--net", "--uts", "--ipc",
		chroot, root, agentproto.GuestBinaryPath, "stray", "kernel-words")
	cmd.Env = []string{"BANGER_AGENT_LISTEN=unix:/var/agent.sock"}
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start unshare: ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
		cancel()
	}()
	defer func() {
		cmd.Process.Kill() // --kill-child: PID 1 gets SIGKILL, which ends the namespace
		<-exited
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	}()
	c, err := agentproto.Connect(ctx, agentproto.UnixDialer(filepath.Join(root, "var", "agent.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil || info.InitMode != agentproto.InitModePID1 || info.PID == 1 || info.SSH != "builtin" {
		t.Fatalf("info = %+v, %v; want the pid1 agent child with the builtin ssh server", info, err)
	}

	out := run(t, c, ctx, false, "cat /proc/1/cmdline; echo; cat /proc/mounts")
	if !strings.HasPrefix(out, agentproto.GuestBinaryPath+"\x00") {
		t.Errorf("PID 1 is %q, want the agent", strings.SplitN(out, "\n", 2)[0])
	}
	for _, m := range []string{" /proc proc ", " /sys sysfs ", " /dev devtmpfs ", " /dev/pts devpts ", " /run tmpfs ", " /tmp tmpfs "} {
		if !strings.Contains(out, m) {
			t.Errorf("mounts lack %q:\n%s", m, out)
		}
	}
	if out := run(t, c, ctx, true, "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("tty under PID 1 = %q", out)
	}

	// An orphan is reparented to PID 1, which must reap it.
	run(t, c, ctx, false, "sleep 0.2 >/dev/null 2>&1 &")
	time.Sleep(time.Second)
	stats := run(t, c, ctx, false, "cat /proc/[0-9]*/stat")
	for _, line := range strings.Split(strings.TrimSpace(stats), "\n") {
		if f := strings.Fields(line[strings.LastIndexByte(line, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			t.Errorf("zombie left unreaped: %s", line)
		}
	}
	c.Close()

	// HUP and QUIT sent to PID 1 are forwarded to the agent child, which
	// does not catch them: it dies (after a goroutine dump for QUIT), PID 1
	// logs how and starts a new one.
	pid1 := childOf(t, cmd.Process.Pid)
	for _, tt := range []struct {
		sig      syscall.Signal
		want     []string
		restarts int
	}{
		{syscall.SIGHUP, []string{`msg="agent exited" signal=HUP`}, 1},
		{syscall.SIGQUIT, []string{"SIGQUIT: quit", `msg="agent exited" code=2`}, 2},
	} {
		if err := syscall.Kill(pid1, tt.sig); err != nil {
			t.Fatal(err)
		}
		waitConsole(t, &console, tt.want...)
		c, err := agentproto.Connect(ctx, agentproto.UnixDialer(filepath.Join(root, "var", "agent.sock")))
		if err != nil {
			t.Fatalf("reconnecting after %v: %v", tt.sig, err)
		}
		again, err := c.Info(ctx)
		c.Close()
		if err != nil || again.PID == info.PID {
			t.Fatalf("after %v: info = %+v, %v; want a new agent child (the old one was %d)", tt.sig, again, err, info.PID)
		}
		info = again
		if n := strings.Count(console.String(), `msg="agent exited"`); n != tt.restarts {
			t.Errorf("after %v the agent exited %d times, want %d", tt.sig, n, tt.restarts)
		}
	}
}

// childOf is the host PID of unshare's forked child: PID 1 of the new
// namespace.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	var children string
	waitUntil(t, "unshare's child", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		children = strings.TrimSpace(string(b))
		return children != ""
	})
	child, err := strconv.Atoi(strings.Fields(children)[0])
	if err != nil {
		t.Fatal(err)
	}
	return child
}

// waitConsole waits until the console shows every one of want.
func waitConsole(t *testing.T, console *syncBuffer, want ...string) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%q on the console", want), func() bool {
		out := console.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func run(t *testing.T, c *agentproto.Client, ctx context.Context, tty bool, script string) string {
	t.Helper()
	var out bytes.Buffer
	st, err := c.Run(ctx, agentproto.ExecRequest{Argv: []string{"sh", "-c", script}, TTY: tty}, agentproto.Stdio{Stdout: &out, Stderr: &out})
	if err != nil || !st.Success() {
		t.Fatalf("running %q: %+v, %v\n%s", script, st, err, out.String())
	}
	return out.String()
}

// busyboxRoot is a minimal image: busybox, /etc/passwd and the agent.
func busyboxRoot(t *testing.T, busybox, agentBin string) string {
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "var", "root", filepath.Dir(agentproto.GuestBinaryPath)} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, busybox, filepath.Join(root, "bin", "busybox"))
	copyFile(t, agentBin, filepath.Join(root, agentproto.GuestBinaryPath))
	for _, applet := range []string{"sh", "cat", "echo", "sleep", "tty", "ls", "id"} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	return root
}

func copyFile(t *testing.T, src, dst string) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
