//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
)

// nobody is the unprivileged user of newUnprivilegedEnv.
const nobody = 65534

// newUnprivilegedEnv is newEnv for a user who is not root, as banger
// normally runs: bangerd and every banger command run as nobody; root
// only runs 'system setup --user' and the egress helper. The daemon gets
// a mount namespace of its own in which /dev/net/tun may be opened by
// anyone (it is root's alone on some hosts), so its QEMUs can attach to
// the TAPs nobody owns; nothing of the host changes.
func newUnprivilegedEnv(t *testing.T, extraConfig string) *env {
	t.Helper()
	fixture.Require(t, "setpriv", "unshare")
	e := newEnv(t, extraConfig)
	cfg, err := os.ReadFile(filepath.Join(e.home, "config", "banger", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parents are root's alone: nobody's home, the binaries
	// and the runtime dir must be reachable.
	home, err := os.MkdirTemp("", "bge2e-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	watch.addDir(e, home)
	e.home = home
	os.MkdirAll(filepath.Join(home, "config", "banger"), 0o755)
	os.WriteFile(filepath.Join(home, "config", "banger", "config.toml"), cfg, 0o644)
	for _, d := range []string{home, e.rt} {
		if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", nobody, nobody), d).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", d, err, out)
		}
		os.Chmod(d, 0o755)
	}
	os.Chmod(binDir, 0o755)
	for i, v := range e.vars {
		for _, k := range []string{"HOME=", "XDG_CONFIG_HOME=", "XDG_STATE_HOME=", "XDG_CACHE_HOME="} {
			if strings.HasPrefix(v, k) {
				sub := map[string]string{"HOME=": "", "XDG_CONFIG_HOME=": "config", "XDG_STATE_HOME=": "state", "XDG_CACHE_HOME=": "cache"}[k]
				e.vars[i] = k + filepath.Join(home, sub)
			}
		}
	}
	tun, err := os.MkdirTemp("", "bge2e-tun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tun) })
	watch.addDir(e, tun)
	id := strconv.Itoa(nobody)
	e.asUser = []string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--"}
	script := fmt.Sprintf(`set -e; mount -t tmpfs -o mode=755 bangertun %[1]s; mknod -m 666 %[1]s/tun c 10 200; mount --bind %[1]s/tun /dev/net/tun; exec "$@"`, tun)
	e.daemonWrap = append([]string{"unshare", "-m", "--propagation", "private", "--", "sh", "-c", script, "sh"}, e.asUser...)

	// Root's part, as on a real host: the network for nobody...
	setup := e.inNS(filepath.Join(binDir, "banger"), "system", "setup", "--user", id, "--config", filepath.Join(home, "config", "banger", "config.toml"))
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("system setup --user %s: %v\n%s", id, err, out)
	} else if !strings.Contains(string(out), "system egress-helper --user "+id) {
		t.Errorf("setup in a namespace does not say how to run the egress helper:\n%s", out)
	}
	t.Cleanup(func() {
		e.cleanup() // the VMs and the daemon first
		out, err := e.inNS(filepath.Join(binDir, "banger"), "system", "teardown", "--user", id, "--force").CombinedOutput()
		if err != nil {
			t.Errorf("system teardown: %v\n%s", err, out)
		}
	})
	return e
}

// egressHelper is the root helper of an unprivileged env.
type egressHelper struct {
	e      *env
	cmd    *exec.Cmd
	out    bytes.Buffer
	socket string
}

// startEgressHelper starts 'banger system egress-helper' as root in the
// namespace and waits for its socket.
func (e *env) startEgressHelper() *egressHelper {
	e.t.Helper()
	h := &egressHelper{e: e, socket: fmt.Sprintf("/run/banger/egress/%d@%s.sock", nobody, e.ns.Name)}
	h.start()
	e.t.Cleanup(func() { h.stop(syscall.SIGTERM) })
	return h
}

func (h *egressHelper) start() {
	h.e.t.Helper()
	os.Remove(h.socket) // a killed helper's; the new one's is awaited
	h.cmd = h.e.inNS(filepath.Join(binDir, "banger"), "system", "egress-helper", "--user", strconv.Itoa(nobody))
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	h.out.Reset()
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	if err := h.cmd.Start(); err != nil {
		h.e.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(h.socket); err == nil {
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || fi.Mode().Perm() != 0o600 {
				h.e.t.Errorf("helper socket: uid %d mode %v; want %d, 0600", st.Uid, fi.Mode().Perm(), nobody)
			}
			return
		}
		if time.Now().After(deadline) {
			h.e.t.Fatalf("the egress helper did not listen at %s:\n%s", h.socket, h.out.String())
		}
	}
}

// stop stops the helper with sig: SIGTERM lets it remove its socket,
// SIGKILL is a crash.
func (h *egressHelper) stop(sig syscall.Signal) {
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Signal(sig)
		h.cmd.Wait()
		h.cmd = nil
	}
	os.Remove(h.socket)
}

// registerBusyboxAsUser registers the busybox image from copies nobody
// can read (the fixture cache is root's).
func (e *env) registerBusyboxAsUser(name string) {
	e.t.Helper()
	k := fixture.DebianKernel(e.t)
	dir := filepath.Join(e.home, "fixtures")
	os.MkdirAll(dir, 0o755)
	for _, src := range []string{fixture.BusyboxSystemRootfs(e.t), k.Vmlinuz, k.Initrd, k.Modules} {
		if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
			e.t.Fatalf("copying %s: %v: %s", src, err, out)
		}
	}
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", nobody, nobody), dir).Run()
	at := func(p string) string { return filepath.Join(dir, filepath.Base(p)) }
	e.ok("image", "register", "--name", name, "--rootfs", at(fixture.BusyboxSystemRootfs(e.t)), "--kernel", at(k.Vmlinuz), "--initrd", at(k.Initrd), "--modules", at(k.Modules))
}

// TestEgressUnprivilegedDaemon: a daemon running as nobody, with the
// egress helper 'system setup' would install, enforces allow (names and
// addresses) and the always-deny list under full; the guest's TAP is
// bound to its lease; a helper restart leaves the tables as they were.
func TestEgressUnprivilegedDaemon(t *testing.T) {
	e := newUnprivilegedEnv(t, "default_dns = \""+inetDNS+"\"\n")
	h := e.startEgressHelper()
	e.startDaemon()
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", daemonPID(e.rt))); err != nil || !strings.Contains(string(b), fmt.Sprintf("\nUid:\t%d\t", nobody)) {
		t.Fatalf("bangerd does not run as uid %d (%v):\n%s", nobody, err, b)
	}
	newInternet(t, e)
	e.registerBusyboxAsUser("bb")
	e.ok("vm", "create", "--name", "eg", "--image", "bb", "--memory", "256", "--disk-size", "256M", "--network", "allow", "--allow", "allowed.test")
	vm := e.vm("eg")

	expectReach(t, e, "eg", "allow", []reach{
		{"allowed.test", "allowed.test", true},
		{"denied.test", "denied.test", false},
		{"denied.test's address", inetDenied, false},
		{"the LAN", inetLAN, false},
		{"link-local metadata", inetMetadata, false},
	})
	if out := e.ssh("eg", "nslookup -type=a denied.test 2>&1 || true"); strings.Contains(out, inetDenied) {
		t.Errorf("allow: denied.test resolved:\n%s", out)
	}
	bridge, err := e.inNS("nft", "list", "table", "bridge", "banger_egress").CombinedOutput()
	if err != nil || !strings.Contains(string(bridge), `"`+vm.TAP+`" . `+vm.IP) {
		t.Errorf("the bridge table does not bind %s to %s (%v):\n%s", vm.TAP, vm.IP, err, bridge)
	}

	// The helper crashes and restarts (systemd would); the tables stay as
	// they were and the daemon's next request goes to the new helper.
	before := egressTable(t, e)
	h.stop(syscall.SIGKILL)
	h.start()
	if after := egressTable(t, e); after != before {
		t.Errorf("the egress table changed across a helper restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// full, on the running VM: the internet, not the LAN nor link-local.
	e.ok("vm", "set", "eg", "--network", "full")
	expectReach(t, e, "eg", "full", []reach{
		{"denied.test", "denied.test", true},
		{"denied.test's address", inetDenied, true},
		{"the LAN", inetLAN, false},
		{"link-local metadata", inetMetadata, false},
	})
}
