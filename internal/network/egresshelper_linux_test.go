package network

// Root tier: the egress helper runs as root in a namespace the test
// creates, and a client talks to it as an unprivileged uid, both as
// children of this test binary.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api/errdefs"
)

// helperEnv is what the helper and client children read.
type helperEnv struct {
	Socket   string     `json:"socket"`
	Dir      string     `json:"dir"`
	StateDir string     `json:"state_dir"`
	UID      int        `json:"uid"`
	Spec     EgressSpec `json:"spec"`
	Tap      string     `json:"tap"`
}

func TestRootEgressHelper(t *testing.T) {
	w := newWorld(t)
	stateDir := t.TempDir()
	w.sys = NewSystem(WithResolved(&fakeResolved{links: map[string]string{}}), WithUnits(&fakeUnits{units: map[string]string{}}),
		WithStateDir(stateDir), WithExecutable("/usr/local/bin/banger"))
	w.must(t, w.host, func() error {
		_, err := w.sys.Setup(context.Background(), w.spec, SetupOptions{})
		return err
	})
	os.Chmod(stateDir, 0o755)
	top, err := os.MkdirTemp("", "banger-helper-test-") // t.TempDir's parents are root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755)
	dir := filepath.Join(top, "egress")
	env := helperEnv{Dir: dir, StateDir: stateDir, UID: testUID, Tap: TapName(w.spec.Bridge, 1),
		Spec: EgressSpec{Bridge: w.spec.Bridge, BridgeIP: w.spec.BridgeIP, CIDR: w.spec.CIDR, DNSPort: DNSPort}}
	exe := worldExecutable(t)

	// The helper: root, in the namespace.
	var helper *exec.Cmd
	var helperOut strings.Builder
	start := func() {
		t.Helper()
		w.must(t, w.host, func() error {
			ns, err := currentNamespace()
			if err != nil {
				return err
			}
			env.Socket = EgressHelperSocket(dir, testUID, ns)
			helper = exec.Command(exe, "-test.run=^TestRootEgressHelperProcess$")
			helper.Env = append(os.Environ(), "BANGER_EGRESS_HELPER_TEST="+envJSON(env))
			helper.Stdout, helper.Stderr = &helperOut, &helperOut
			return helper.Start()
		})
	}
	start()
	t.Cleanup(func() {
		helper.Process.Signal(syscall.SIGTERM)
		helper.Wait()
	})
	waitSocket := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if fi, err := os.Stat(env.Socket); err == nil {
				st := fi.Sys().(*syscall.Stat_t)
				if fi.Mode().Perm() != 0o600 || int(st.Uid) != testUID {
					t.Errorf("socket mode %v uid %d; want 0600 owned by %d", fi.Mode().Perm(), st.Uid, testUID)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the helper did not listen:\n%s", helperOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSocket()

	// The user's daemon: its syncs and learns land in the tables; its
	// hostile requests are refused.
	if out, err := runAs(t, exe, "client", env, testUID, testGID); err != nil {
		t.Fatalf("client as uid %d: %v\n%s\nhelper:\n%s", testUID, err, out, helperOut.String())
	}
	w.must(t, w.host, func() error {
		bridge, err := exec.Command("nft", "list", "table", "bridge", EgressTable).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, bridge)
		}
		inet, err := exec.Command("nft", "list", "table", "inet", EgressTable).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, inet)
		}
		for _, want := range []string{`"` + env.Tap + `" . 172.16.0.2`, "iifname . ip saddr != @tap_addr drop", "iifname . arp saddr ip != @tap_addr drop"} {
			if !strings.Contains(string(bridge), want) {
				t.Errorf("bridge table lacks %q:\n%s", want, bridge)
			}
		}
		for _, want := range []string{"chain vm_172_16_0_2", "chain vm_172_16_0_3", "set vm_172_16_0_2_dns", "198.51.100.7", "always_deny"} {
			if !strings.Contains(string(inet), want) {
				t.Errorf("inet table lacks %q:\n%s", want, inet)
			}
		}
		return nil
	})
	// A restarted helper finds the tables as they were, and the daemon's
	// next sync leaves them so.
	before := (&egressWorld{nsWorld: w}).listTable(t)
	helper.Process.Signal(syscall.SIGTERM)
	if err := helper.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, helperOut.String())
	}
	os.Remove(env.Socket)
	start()
	waitSocket()
	if out, err := runAs(t, exe, "client", env, testUID, testGID); err != nil {
		t.Fatalf("client after a helper restart: %v\n%s", err, out)
	}
	if after := (&egressWorld{nsWorld: w}).listTable(t); after != before {
		t.Errorf("the tables changed across a helper restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Another user cannot even connect; and were the socket open to all,
	// the helper would still hang up on them (SO_PEERCRED).
	if out, err := runAs(t, exe, "intruder", env, testUID+1, testGID+1); err != nil {
		t.Errorf("another uid: %v\n%s", err, out)
	}
	if err := os.Chmod(env.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if out, err := runAs(t, exe, "intruder-open", env, testUID+1, testGID+1); err != nil {
		t.Errorf("another uid on an open socket: %v\n%s", err, out)
	}
}

func envJSON(e helperEnv) string {
	b, _ := json.Marshal(e)
	return string(b)
}

func runAs(t *testing.T, exe, role string, env helperEnv, uid, gid int) ([]byte, error) {
	cmd := exec.Command(exe, "-test.run=^TestRootEgressHelperProcess$")
	cmd.Env = append(os.Environ(), "BANGER_EGRESS_HELPER_TEST="+envJSON(env), "BANGER_EGRESS_HELPER_ROLE="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd.CombinedOutput()
}

// TestRootEgressHelperProcess is not a test: TestRootEgressHelper runs it
// as the helper (root) and as clients (unprivileged).
func TestRootEgressHelperProcess(t *testing.T) {
	raw := os.Getenv("BANGER_EGRESS_HELPER_TEST")
	if raw == "" {
		t.Skip("helper process for TestRootEgressHelper")
	}
	var env helperEnv
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		t.Fatal(err)
	}
	var err error
	switch os.Getenv("BANGER_EGRESS_HELPER_ROLE") {
	case "":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		err = ServeEgressHelper(ctx, EgressHelperOptions{UID: env.UID, Dir: env.Dir, Rules: HostEgress(),
			System: NewSystem(WithStateDir(env.StateDir))})
	case "client":
		err = helperClient(env)
	case "intruder-open":
		if err = HelperEgress(env.Socket).Ping(); err == nil {
			err = errors.New("another uid was answered on an open socket")
		} else {
			err = nil
		}
	case "intruder":
		err = HelperEgress(env.Socket).Ping()
		if err == nil || !errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("another uid reached the helper: %v", err)
		} else {
			err = nil
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperClient(env helperEnv) error {
	c := HelperEgress(env.Socket)
	defer c.Close()
	a2, a3 := netip.MustParseAddr("172.16.0.2"), netip.MustParseAddr("172.16.0.3")
	allow, _ := ParseEgressPolicy("allow", []string{"allowed.test"}, false)
	vms := []VMEgress{{Addr: a2, Policy: allow, Tap: env.Tap}, {Addr: a3, Policy: EgressPolicy{Mode: EgressFull}}}
	if err := c.Sync(env.Spec, vms); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := c.Learn(a2, []netip.Addr{netip.MustParseAddr("198.51.100.7")}, time.Minute); err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	if _, err := c.Denied(); err != nil {
		return fmt.Errorf("denied: %w", err)
	}
	other := env.Spec
	other.Bridge, other.CIDR = "banger9", netip.MustParsePrefix("10.0.0.0/8")
	for what, err := range map[string]error{
		"another bridge":   c.Sync(other, vms),
		"a foreign VM":     c.Sync(env.Spec, []VMEgress{{Addr: netip.MustParseAddr("10.1.2.3"), Policy: EgressPolicy{Mode: EgressFull}}}),
		"a tap not theirs": c.Sync(env.Spec, []VMEgress{{Addr: a2, Policy: allow, Tap: "lo"}}),
		"a foreign learn":  c.Learn(netip.MustParseAddr("192.168.1.2"), []netip.Addr{a3}, time.Minute),
	} {
		if err == nil {
			return fmt.Errorf("%s was accepted", what)
		}
		if k := errdefs.KindOf(err); k != errdefs.KindInvalid && k != errdefs.KindConflict {
			return fmt.Errorf("%s: %v (kind %s), want invalid or conflict", what, err, k)
		}
	}
	// A refused request changed nothing, and the connection still works.
	return c.Sync(env.Spec, vms)
}
