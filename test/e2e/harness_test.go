//go:build e2e

// Package e2e boots real guests under QEMU and drives the real banger CLI
// against a real bangerd, each test in a network namespace of its own.
// Run with: go test -tags e2e ./test/e2e/ (as root).
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"banger/internal/store"
	"banger/internal/testutil"
	"banger/internal/testutil/fixture"
)

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	// A run of this binary by one of its own tests (the watchdog's) uses
	// the binaries its parent built.
	binDir = os.Getenv(envReuseBin)
	owned := binDir == ""
	if owned {
		dir, err := buildBinaries()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binDir = dir
	}
	stop := watch.start()
	code := m.Run()
	stop()
	watch.fire("left after the tests")
	if owned {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinaries builds banger, bangerd and the agent into a new
// directory.
func buildBinaries() (string, error) {
	dir, err := os.MkdirTemp("", "banger-e2e-bin-")
	if err != nil {
		return "", err
	}
	builds := map[string][]string{
		"banger":             {"build", "-o", filepath.Join(dir, "banger"), "banger/cmd/banger"},
		"bangerd":            {"build", "-o", filepath.Join(dir, "bangerd"), "banger/cmd/bangerd"},
		"banger-vsock-agent": {"build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "banger-vsock-agent"), "banger/cmd/banger-vsock-agent"},
	}
	for name, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		if name == "banger-vsock-agent" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if err := cmd.Run(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("building %s: %w", name, err)
		}
	}
	return dir, nil
}

// env is one user's banger world inside its own network namespace.
type env struct {
	t    *testing.T
	ns   *testutil.NetNS
	home string
	rt   string
	vars []string

	mu     sync.Mutex
	daemon *exec.Cmd

	// asUser and daemonWrap, set by newUnprivilegedEnv, run banger and
	// bangerd as an unprivileged user (see unprivileged_test.go).
	asUser, daemonWrap []string
}

// newEnv makes the namespace, directories and config; extra config lines
// are appended to a qemu config.
func newEnv(t *testing.T, extraConfig string) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	fixture.Require(t, "qemu-system-x86_64", "ip", "ssh")
	e := &env{t: t, ns: testutil.NewNetNS(t), home: t.TempDir()}
	rt, err := os.MkdirTemp("", "bge2e")
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	e.vars = append(os.Environ(),
		"HOME="+e.home,
		"XDG_CONFIG_HOME="+filepath.Join(e.home, "config"),
		"XDG_STATE_HOME="+filepath.Join(e.home, "state"),
		"XDG_CACHE_HOME="+filepath.Join(e.home, "cache"),
		"XDG_RUNTIME_DIR="+rt,
		"BANGER_BANGERD="+filepath.Join(binDir, "bangerd"),
		"BANGER_AGENT="+filepath.Join(binDir, "banger-vsock-agent"),
		"BANGER_NO_AUTOSTART=1",
	)
	cfgDir := filepath.Join(e.home, "config", "banger")
	os.MkdirAll(cfgDir, 0o755)
	os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte("vmm = \"qemu\"\nlog_level = \"debug\"\n"+extraConfig), 0o644)
	t.Cleanup(e.cleanup)
	watch.add(e)
	return e
}

// inNS wraps a command so it runs inside the test's namespace.
func (e *env) inNS(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.ns.Name, name}, args...)...)
	cmd.Env = e.vars
	return cmd
}

// asUserNS is inNS for banger's own commands: as the env's user.
func (e *env) asUserNS(name string, args ...string) *exec.Cmd {
	if len(e.asUser) == 0 {
		return e.inNS(name, args...)
	}
	return e.inNS(e.asUser[0], append(append(slices.Clone(e.asUser[1:]), name), args...)...)
}

// startDaemon starts bangerd in the namespace (setting up banger's network
// there) and waits for it to answer.
func (e *env) startDaemon(extraArgs ...string) {
	e.t.Helper()
	wrap := append(slices.Clone(e.daemonWrap), filepath.Join(binDir, "bangerd"), "--setup-network")
	cmd := e.inNS(wrap[0], append(wrap[1:], extraArgs...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := e.run("daemon", "status"); code == 0 {
			e.mu.Lock()
			e.daemon = cmd
			e.mu.Unlock()
			return
		}
		select {
		case <-done:
			e.t.Fatalf("bangerd exited: %s\nlog:\n%s", stderr.String(), e.daemonLog())
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.t.Fatalf("bangerd did not answer in 30s; log:\n%s", e.daemonLog())
}

// killDaemon kills bangerd with SIGKILL (VMs keep running).
func (e *env) killDaemon() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.daemon != nil {
		pid := daemonPID(e.rt)
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		e.daemon.Process.Kill()
		e.daemon = nil
	}
	time.Sleep(100 * time.Millisecond)
}

func daemonPID(rt string) int {
	b, err := os.ReadFile(filepath.Join(rt, "banger", "bangerd.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

func (e *env) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.home, "state", "banger", "bangerd.log"))
	s := string(b)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// run runs banger in the namespace: stdout, stderr, exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := e.asUserNS(filepath.Join(binDir, "banger"), args...)
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd.Env = e.vars
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running banger %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs banger and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("banger %s: exit %d\nstdout: %s\nstderr: %s\ndaemon log tail:\n%s", strings.Join(args, " "), code, out, errOut, e.daemonLog())
	}
	return out
}

// cleanup deletes every VM (so no QEMU outlives the test), then stops the
// daemon; the namespace goes with the test.
func (e *env) cleanup() {
	if out, _, code := e.run("vm", "list", "--json"); code == 0 {
		for _, name := range jsonNames(out) {
			e.run("vm", "delete", "--force", name)
		}
	}
	e.run("daemon", "stop")
	e.killDaemon()
	// Anything still running from this env's runtime dir is a leak; kill
	// it so later tests start clean, and say so.
	out, _ := exec.Command("pgrep", "-f", e.rt).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		fmt.Sscan(f, &pid)
		if pid > 0 {
			e.t.Errorf("process %d of this test still running after cleanup", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.RemoveAll(e.rt)
	watch.remove(e)
}

// openStore opens the daemon's state database to look at what it
// records; reads only, alongside the running daemon (SQLite in WAL mode).
func (e *env) openStore() *store.Store {
	e.t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(e.home, "state", "banger", "banger.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// tapAssignments is the daemon's record of which VM holds which TAP.
func (e *env) tapAssignments() []store.TapAssignment {
	e.t.Helper()
	as, err := e.openStore().TapAssignments(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

// knownHosts is banger's own known_hosts file ("" when there is none).
func (e *env) knownHosts() string {
	b, _ := os.ReadFile(filepath.Join(e.home, "config", "banger", "ssh", "known_hosts"))
	return string(b)
}

// assertNetworkFreed checks the state database holds no lease or TAP for
// the VM name and known_hosts no longer pins a key for name.vm.
func (e *env) assertNetworkFreed(name string) {
	e.t.Helper()
	if l, err := e.openStore().LeaseByVM(context.Background(), name); err == nil {
		e.t.Errorf("lease %s of %s still recorded", l.Addr, name)
	}
	for _, a := range e.tapAssignments() {
		if a.VM == name {
			e.t.Errorf("tap %s still recorded as held by %s", a.Tap, name)
		}
	}
	for _, line := range strings.Split(e.knownHosts(), "\n") {
		if hosts, _, _ := strings.Cut(line, " "); slices.Contains(strings.Split(hosts, ","), name+".vm") {
			e.t.Errorf("known_hosts still pins a key for %s.vm: %s", name, line)
		}
	}
}
