package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLeasesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	a2, a3 := netip.MustParseAddr("172.16.0.2"), netip.MustParseAddr("172.16.0.3")
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.PutLease(ctx, Lease{VM: "alpha", Addr: a2, MAC: "02:ba:ac:10:00:02"}); err != nil {
			return err
		}
		return tx.PutLease(ctx, Lease{VM: "beta", Addr: a3, MAC: "02:ba:ac:10:00:03"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	got, err := s.LeaseByVM(ctx, "ALPHA") // names are DNS labels: case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != a2 || got.MAC != "02:ba:ac:10:00:02" || got.CreatedAt.IsZero() {
		t.Errorf("LeaseByVM(ALPHA) = %+v", got)
	}
	if got, err := s.LeaseByAddr(ctx, a3); err != nil || got.VM != "beta" {
		t.Errorf("LeaseByAddr(%s) = %+v, %v; want beta", a3, got, err)
	}
	if _, err := s.LeaseByVM(ctx, "gamma"); !errors.Is(err, ErrNoRow) {
		t.Errorf("LeaseByVM(gamma) err = %v, want ErrNoRow", err)
	}
}

func TestPutLeaseNeverReplaces(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	a2 := netip.MustParseAddr("172.16.0.2")
	put := func(l Lease) error { return s.Tx(ctx, func(tx *Tx) error { return tx.PutLease(ctx, l) }) }
	if err := put(Lease{VM: "alpha", Addr: a2, MAC: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := put(Lease{VM: "beta", Addr: a2, MAC: "m"}); err == nil {
		t.Error("second lease of the same address succeeded, want an error")
	}
	if err := put(Lease{VM: "Alpha", Addr: netip.MustParseAddr("172.16.0.3"), MAC: "m"}); err == nil {
		t.Error("second lease for the same VM succeeded, want an error")
	}
}

func TestDeleteLeaseRecordsReleaseOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	addrs := []netip.Addr{netip.MustParseAddr("172.16.0.2"), netip.MustParseAddr("172.16.0.3")}
	err := s.Tx(ctx, func(tx *Tx) error {
		for i, a := range addrs {
			if err := tx.PutLease(ctx, Lease{VM: string(rune('a' + i)), Addr: a, MAC: "m"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range []string{"b", "a", "missing"} {
		var ok bool
		if err := s.Tx(ctx, func(tx *Tx) (err error) { ok, err = tx.DeleteLease(ctx, vm); return err }); err != nil {
			t.Fatal(err)
		}
		if want := vm != "missing"; ok != want {
			t.Errorf("DeleteLease(%s) = %v, want %v", vm, ok, want)
		}
	}
	rs, err := s.Releases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range rs {
		order = append(order, r.Addr.String())
	}
	if diff := cmp.Diff([]string{"172.16.0.3", "172.16.0.2"}, order); diff != "" {
		t.Errorf("releases, oldest first (-want +got):\n%s", diff)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.ForgetReleases(ctx) }); err != nil {
		t.Fatal(err)
	}
	if rs, _ := s.Releases(ctx); len(rs) != 0 {
		t.Errorf("releases after ForgetReleases = %v, want none", rs)
	}
}

func TestNetworkConfigAndTapAssignments(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if _, err := s.NetworkConfig(ctx); !errors.Is(err, ErrNoRow) {
		t.Fatalf("NetworkConfig on a new store err = %v, want ErrNoRow", err)
	}
	want := NetworkConfig{BridgeName: "banger0", BridgeIP: netip.MustParseAddr("172.16.0.1"), CIDR: netip.MustParsePrefix("172.16.0.0/24")}
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.PutNetworkConfig(ctx, want); err != nil {
			return err
		}
		if err := tx.AssignTap(ctx, "banger0-tap1", "b"); err != nil {
			return err
		}
		return tx.AssignTap(ctx, "banger0-tap0", "a")
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.NetworkConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.BridgeName != want.BridgeName || got.BridgeIP != want.BridgeIP || got.CIDR != want.CIDR {
		t.Errorf("NetworkConfig = %+v, want %+v", got, want)
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.AssignTap(ctx, "banger0-tap0", "c") }); err == nil {
		t.Error("assigning a taken tap succeeded, want an error")
	}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.UnassignTap(ctx, "b") }); err != nil {
		t.Fatal(err)
	}
	as, err := s.TapAssignments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Tap != "banger0-tap0" || as[0].VM != "a" {
		t.Errorf("assignments = %+v, want only banger0-tap0 -> a", as)
	}
}
