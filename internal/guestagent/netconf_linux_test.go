package guestagent

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConfigureNetworkInNetns runs the netlink code for real in a fresh
// network namespace, on lo since a new namespace has no eth0. It runs in a
// re-executed test binary: a thread left in another namespace could be the
// main thread, which would move /proc/self/net for every later test.
func TestConfigureNetworkInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if os.Getenv("BANGER_NETNS_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConfigureNetworkInNetns$", "-test.v")
		cmd.Env = append(os.Environ(), "BANGER_NETNS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("netns child: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "--- SKIP") {
			t.Skipf("netns child skipped:\n%s", out)
		}
		return
	}
	type result struct {
		skip string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread is discarded with its namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{skip: "cannot create a network namespace: " + err.Error()}
			return
		}
		addr, gw := netip.MustParsePrefix("10.77.0.2/24"), netip.MustParseAddr("10.77.0.1")
		err := configureNetwork("lo", addr, gw)
		if err == nil {
			err = configureNetwork("lo", addr, gw) // idempotent
		}
		if err == nil {
			err = checkNetns(addr)
		}
		done <- result{err: err}
	}()
	r := <-done
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
}

func checkNetns(addr netip.Prefix) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	if lo.Flags&net.FlagUp == 0 {
		return fmt.Errorf("lo is down")
	}
	addrs, _ := lo.Addrs()
	found := false
	for _, a := range addrs {
		found = found || a.String() == addr.String()
	}
	if !found {
		return fmt.Errorf("lo addresses %v lack %s", addrs, addr)
	}
	routes, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		return err
	}
	// Default route (destination 0) via 10.77.0.1, little-endian hex.
	for _, line := range strings.Split(string(routes), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" && f[2] == "01004D0A" {
			return nil
		}
	}
	return fmt.Errorf("no default route via 10.77.0.1 in:\n%s", routes)
}
