package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"banger/api/errdefs"
	"banger/internal/config"
)

func TestCheckConfigChange(t *testing.T) {
	ctx := context.Background()
	db := newMemStore()
	old := config.Default()
	p := NewIPAM(db, old)
	if err := CheckConfigChange(ctx, db, old, nil); err != nil {
		t.Fatalf("first check: %v", err)
	}
	allocate(t, p, "alpha")
	allocate(t, p, "beta")
	if err := CheckConfigChange(ctx, db, old, func(string) bool { return true }); err != nil {
		t.Fatalf("unchanged settings with running VMs: %v", err)
	}

	moved := config.Default()
	moved.CIDR, moved.BridgeIP = netip.MustParsePrefix("10.50.0.0/24"), netip.MustParseAddr("10.50.0.1")
	running := func(vm string) bool { return vm == "beta" }
	err := CheckConfigChange(ctx, db, moved, running)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("changed cidr with beta running: err = %v, want conflict", err)
	}
	for _, want := range []string{"cidr 172.16.0.0/24 -> 10.50.0.0/24", "bridge_ip 172.16.0.1 -> 10.50.0.1", "running: beta", "config.toml", "system setup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict message %q lacks %q", err, want)
		}
	}
	if l, _ := p.LeaseOf(ctx, "beta"); l.Addr.String() != "172.16.0.3" {
		t.Errorf("refused check changed beta's lease to %s", l.Addr)
	}

	// Nothing running: old leases are dropped and the new network recorded.
	if err := CheckConfigChange(ctx, db, moved, func(string) bool { return false }); err != nil {
		t.Fatalf("changed cidr with no VM running: %v", err)
	}
	p = NewIPAM(db, moved)
	if leases, _ := p.Leases(ctx); len(leases) != 0 {
		t.Errorf("leases after the move = %+v, want none", leases)
	}
	if got := allocate(t, p, "beta"); got != "10.50.0.2" {
		t.Errorf("beta in the new network = %s, want 10.50.0.2", got)
	}
	if err := CheckConfigChange(ctx, db, moved, func(string) bool { return true }); err != nil {
		t.Errorf("check after the move: %v", err)
	}
}

func TestCheckConfigChangeKeepsLeasesThatStillFit(t *testing.T) {
	ctx := context.Background()
	db := newMemStore()
	cfg := config.Default()
	CheckConfigChange(ctx, db, cfg, nil)
	p := NewIPAM(db, cfg)
	allocate(t, p, "a") // .2
	allocate(t, p, "b") // .3
	renamed := cfg
	renamed.BridgeName = "br-vms"
	renamed.BridgeIP = netip.MustParseAddr("172.16.0.3") // b's address becomes the bridge's
	if err := CheckConfigChange(ctx, db, renamed, nil); err != nil {
		t.Fatal(err)
	}
	p = NewIPAM(db, renamed)
	if l, err := p.LeaseOf(ctx, "a"); err != nil || l.Addr.String() != "172.16.0.2" {
		t.Errorf("a = %+v, %v; want it to keep 172.16.0.2", l, err)
	}
	if _, err := p.LeaseOf(ctx, "b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("b kept the new bridge address: %v", err)
	}
}
