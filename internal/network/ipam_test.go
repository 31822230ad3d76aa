package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/store"
)

func smallNet(cidr, gw string) config.Config {
	c := config.Default()
	c.CIDR, c.BridgeIP = netip.MustParsePrefix(cidr), netip.MustParseAddr(gw)
	return c
}

// stores runs a test against the in-memory fake and the real database.
func stores(t *testing.T, fn func(t *testing.T, newStore func() Store)) {
	t.Run("mem", func(t *testing.T) { fn(t, func() Store { return newMemStore() }) })
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func() Store {
			s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return FromStore(s)
		})
	})
}

func allocate(t *testing.T, p *IPAM, vm string) string {
	t.Helper()
	l, err := p.Allocate(context.Background(), vm)
	if err != nil {
		t.Fatalf("Allocate(%s): %v", vm, err)
	}
	return l.Addr.String()
}

func TestIPAMAllocation(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		// /29: .0 network, .7 broadcast, .1 gateway: .2 to .6 for guests.
		p := NewIPAM(newStore(), smallNet("10.9.0.0/29", "10.9.0.1"))
		var got []string
		for _, vm := range []string{"a", "b", "c", "d", "e"} {
			got = append(got, allocate(t, p, vm))
		}
		if want := "10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6"; strings.Join(got, " ") != want {
			t.Errorf("addresses = %v, want %s", got, want)
		}
		if again := allocate(t, p, "C"); again != "10.9.0.4" {
			t.Errorf("Allocate(C) again = %s, want c's lease 10.9.0.4 (names are case-insensitive)", again)
		}
		l, _ := p.LeaseOf(ctx, "b")
		if l.MAC != "02:ba:0a:09:00:03" {
			t.Errorf("MAC of 10.9.0.3 = %s", l.MAC)
		}
		_, err := p.Allocate(ctx, "f")
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "all 5 guest addresses") || !strings.Contains(err.Error(), "larger cidr") {
			t.Errorf("Allocate on a full network: %v, want unavailable with advice", err)
		}
	})
}

func TestIPAMGatewayInTheMiddle(t *testing.T) {
	p := NewIPAM(newMemStore(), smallNet("10.9.0.0/29", "10.9.0.3"))
	var got []string
	for _, vm := range []string{"a", "b", "c"} {
		got = append(got, allocate(t, p, vm))
	}
	if want := "10.9.0.1 10.9.0.2 10.9.0.4"; strings.Join(got, " ") != want {
		t.Errorf("addresses = %v, want %s (the bridge address is skipped)", got, want)
	}
}

func TestIPAMReuseIsLeastRecentlyReleased(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		p := NewIPAM(newStore(), smallNet("10.9.0.0/29", "10.9.0.1"))
		for _, vm := range []string{"a", "b", "c"} { // .2 .3 .4
			allocate(t, p, vm)
		}
		// Release .3 then .2: fresh addresses (.5, .6) come first, then
		// the one released longest ago (.3), then .2.
		for _, vm := range []string{"b", "a"} {
			if err := p.Release(ctx, vm); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Release(ctx, "never-had-one"); err != nil {
			t.Errorf("releasing a VM without a lease: %v", err)
		}
		var got []string
		for _, vm := range []string{"d", "e", "f", "g"} {
			got = append(got, allocate(t, p, vm))
		}
		if want := "10.9.0.5 10.9.0.6 10.9.0.3 10.9.0.2"; strings.Join(got, " ") != want {
			t.Errorf("addresses after releases = %v, want %s", got, want)
		}
	})
}

func TestIPAMPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	cfg := smallNet("10.9.0.0/29", "10.9.0.1")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := NewIPAM(FromStore(s), cfg)
	allocate(t, p, "a")
	allocate(t, p, "b")
	allocate(t, p, "c")
	p.Release(ctx, "a") // .2 released
	s.Close()

	s, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p = NewIPAM(FromStore(s), cfg)
	if got := allocate(t, p, "b"); got != "10.9.0.3" {
		t.Errorf("b after reopen = %s, want its old lease 10.9.0.3", got)
	}
	if got := allocate(t, p, "d"); got != "10.9.0.5" {
		t.Errorf("d after reopen = %s, want 10.9.0.5 (10.9.0.2 was released, so it waits)", got)
	}
}

func TestIPAMConcurrentAllocation(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		p := NewIPAM(newStore(), smallNet("10.9.0.0/26", "10.9.0.1")) // 61 guest addresses
		const n = 40
		var wg sync.WaitGroup
		addrs := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := p.Allocate(ctx, fmt.Sprintf("vm%d", i))
				addrs[i], errs[i] = l.Addr.String(), err
				if i%3 == 0 && err == nil {
					errs[i] = p.Release(ctx, fmt.Sprintf("vm%d", i))
				}
			}()
		}
		wg.Wait()
		seen := map[string]string{}
		for i, a := range addrs {
			if errs[i] != nil {
				t.Fatalf("vm%d: %v", i, errs[i])
			}
			if i%3 == 0 {
				continue // released; its address may be handed out again
			}
			if other, dup := seen[a]; dup {
				t.Errorf("vm%d and %s both got %s", i, other, a)
			}
			seen[a] = fmt.Sprintf("vm%d", i)
		}
		leases, _ := p.Leases(ctx)
		if len(leases) != len(seen) {
			t.Errorf("%d leases, want %d", len(leases), len(seen))
		}
	})
}

func TestIPAMResolver(t *testing.T) {
	ctx := context.Background()
	p := NewIPAM(newMemStore(), config.Default())
	allocate(t, p, "Web")
	if a, ok, err := p.AddrOf(ctx, "web"); err != nil || !ok || a.String() != "172.16.0.2" {
		t.Errorf("AddrOf(web) = %v, %v, %v", a, ok, err)
	}
	if name, ok, err := p.NameOf(ctx, netip.MustParseAddr("172.16.0.2")); err != nil || !ok || name != "web" {
		t.Errorf("NameOf(172.16.0.2) = %q, %v, %v; want web", name, ok, err)
	}
	if _, ok, err := p.AddrOf(ctx, "nope"); ok || err != nil {
		t.Errorf("AddrOf(nope) = %v, %v; want not found", ok, err)
	}
	if _, err := p.LeaseOf(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Lease(nope) = %v, want not found", err)
	}
}
