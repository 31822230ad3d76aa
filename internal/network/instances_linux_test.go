package network

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"banger/internal/config"
	"banger/internal/testutil"
)

// instance is one banger network: a user's bridge in its own namespace.
type instance struct {
	name string
	ns   *testutil.NetNS
	sys  *System
	spec Spec
}

// TestRootTwoInstancesInterleaved: two banger instances of different users
// with different bridges, each in its own network namespace, share one
// state directory (as every banger on a host shares /var/lib/banger). In
// every order their setups and teardowns interleave, one never reads,
// replaces or removes what the other made, and each teardown leaves its
// namespace as it found it.
func TestRootTwoInstancesInterleaved(t *testing.T) {
	testutil.RequiresRoot(t)
	orders := [][]string{
		{"setup a", "setup b", "teardown a", "teardown b"},
		{"setup a", "setup b", "teardown b", "teardown a"},
		{"setup b", "setup a", "teardown a", "teardown b"},
		{"setup a", "teardown a", "setup b", "teardown b"},
		{"setup b", "setup a", "setup b", "teardown a", "setup a", "teardown b", "teardown a"},
	}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			state := t.TempDir()
			var insts []*instance
			for i, n := range []string{"a", "b"} {
				cfg := config.Default()
				cfg.BridgeName, cfg.TapPoolSize = "bg"+n+"0", 3
				insts = append(insts, &instance{name: n, ns: testutil.NewNetNS(t),
					spec: SpecFromConfig(cfg, testUID+i, testGID+i),
					sys: NewSystem(WithResolved(&fakeResolved{links: map[string]string{}}), WithUnits(&fakeUnits{units: map[string]string{}}),
						WithStateDir(state), WithExecutable("/usr/local/bin/banger"))})
			}
			before := map[string]string{}
			for _, in := range insts {
				before[in.name] = in.snapshot(t)
			}
			up := map[string]bool{}
			for _, step := range order {
				in := insts[0]
				if step[len(step)-1] == 'b' {
					in = insts[1]
				}
				if err := in.ns.Do(func() error {
					if step[0] == 's' {
						_, err := in.sys.Setup(context.Background(), in.spec, SetupOptions{})
						return err
					}
					_, err := in.sys.Teardown(context.Background(), in.spec, TeardownOptions{})
					return err
				}); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				up[in.name] = step[0] == 's'
				for _, other := range insts {
					if up[other.name] {
						other.checkIntact(t, step)
					} else if got := other.snapshot(t); got != before[other.name] {
						t.Errorf("after %s, %s's namespace is not as before its setup (-before +now):\n%s", step, other.name, cmp.Diff(before[other.name], got))
					}
				}
			}
			if left, _ := os.ReadDir(state); len(left) != 0 {
				t.Errorf("records left after both teardowns: %v", left)
			}
		})
	}
}

func (in *instance) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	if err := in.ns.Do(func() (err error) { s, err = snapshot(); return err }); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkIntact: in's bridge, taps, nftables table and record are all there.
func (in *instance) checkIntact(t *testing.T, after string) {
	t.Helper()
	err := in.ns.Do(func() error {
		if _, err := netlink.LinkByName(in.spec.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", in.spec.Bridge, err)
		}
		for _, tap := range TapNames(in.spec.Bridge, in.spec.Taps) {
			if _, err := netlink.LinkByName(tap); err != nil {
				return fmt.Errorf("tap %s: %w", tap, err)
			}
		}
		if present, diff, err := HostFirewall().Check(in.spec.firewall()); err != nil || !present || diff != "" {
			return fmt.Errorf("nftables table: present=%v diff=%q err=%v", present, diff, err)
		}
		rec, err := in.sys.ReadRecord()
		if err != nil || rec == nil || rec.Spec != in.spec {
			return fmt.Errorf("record = %+v, %v; want one for %s of user %d", rec, err, in.spec.Bridge, in.spec.UID)
		}
		return nil
	})
	if err != nil {
		t.Errorf("after %s, instance %s is broken: %v", after, in.name, err)
	}
}
