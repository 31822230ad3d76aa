package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/api/errdefs"
	"banger/internal/config"
)

type fakeHost struct {
	links    *fakeLinks
	fw       *fakeFirewall
	sysctl   *fakeSysctl
	resolved *fakeResolved
	units    *fakeUnits
	sys      *System
}

func newFakeHost(t *testing.T) *fakeHost {
	h := &fakeHost{
		links:    newFakeLinks(),
		fw:       &fakeFirewall{},
		sysctl:   &fakeSysctl{vals: map[string]string{forwardKey: "0"}},
		resolved: &fakeResolved{available: true, links: map[string]string{}},
		units:    &fakeUnits{available: true, units: map[string]string{}},
	}
	h.sys = NewSystem(WithLinks(h.links), WithFirewall(h.fw), WithSysctl(h.sysctl), WithResolved(h.resolved),
		WithUnits(h.units), WithStateDir(t.TempDir()), WithExecutable("/opt/banger/bin/banger"),
		WithEgressHelper(t.TempDir(), func(socket string) error {
			if h.units.units[EgressUnitName] == "" {
				return errors.New("no helper")
			}
			return nil
		}))
	h.sys.netns = func() (Namespace, error) { return Namespace{}, nil } // the host's, wherever the test runs
	return h
}

func testSpec() Spec {
	return SpecFromConfig(config.Default(), 1000, 1000)
}

func actions(r Report) map[string]Action {
	out := map[string]Action{}
	for _, c := range r.Changes {
		out[c.Piece] = c.Action
	}
	return out
}

func TestSetupBuildsEverythingThenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	r, err := h.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"bridge": Created, "taps": Created, "ip-forward": Changed, "nat": Created, "resolved": Created, "unit": Created, "egress": Created}
	if got := actions(r); !equalMaps(got, want) {
		t.Errorf("first setup actions = %v, want %v", got, want)
	}
	br, err := h.links.Link("banger0")
	if err != nil {
		t.Fatal(err)
	}
	if !br.Up || br.Alias != bridgeAlias || len(br.Addrs) != 1 || br.Addrs[0] != netip.MustParsePrefix("172.16.0.1/24") {
		t.Errorf("bridge = %+v", br)
	}
	for _, name := range TapNames("banger0", 8) {
		l, err := h.links.Link(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Master != "banger0" || !l.Up || l.Tap.Owner != 1000 || l.Alias != tapAlias {
			t.Errorf("tap %s = %+v", name, l)
		}
	}
	if h.sysctl.vals[forwardKey] != "1" {
		t.Errorf("ip_forward = %q, want 1", h.sysctl.vals[forwardKey])
	}
	if !strings.Contains(h.units.units[UnitName], "ExecStart=/opt/banger/bin/banger system setup --boot") {
		t.Errorf("unit = %q", h.units.units[UnitName])
	}
	if !strings.Contains(h.units.units[EgressUnitName], "ExecStart=/opt/banger/bin/banger system egress-helper --user 1000") || h.units.restarts[EgressUnitName] != 1 {
		t.Errorf("egress unit = %q, started %d times; want the helper for uid 1000, started once", h.units.units[EgressUnitName], h.units.restarts[EgressUnitName])
	}
	if !h.sys.Status(ctx, spec).Ready() {
		t.Errorf("status after setup not ready: %+v", h.sys.Status(ctx, spec))
	}

	linkChanges, applies, sets, rcalls, installs := h.links.changes, h.fw.applies, h.sysctl.sets, h.resolved.calls, h.units.installs
	recBefore, err := os.ReadFile(filepath.Join(h.sys.stateDir, recordName(spec, Namespace{})))
	if err != nil {
		t.Fatal(err)
	}
	r, err = h.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed() {
		t.Errorf("second setup changed something: %+v", r)
	}
	if h.links.changes != linkChanges || h.fw.applies != applies || h.sysctl.sets != sets || h.resolved.calls != rcalls || h.units.installs != installs {
		t.Error("second setup touched the host")
	}
	if recAfter, _ := os.ReadFile(filepath.Join(h.sys.stateDir, recordName(spec, Namespace{}))); string(recAfter) != string(recBefore) {
		t.Errorf("second setup rewrote the record:\n%s\n->\n%s", recBefore, recAfter)
	}
	rec, err := h.sys.ReadRecord()
	if err != nil || rec == nil || !rec.ForwardEnabled || !rec.Resolved || rec.Unit != UnitName || rec.Spec != spec {
		t.Errorf("record = %+v, %v", rec, err)
	}
}

func equalMaps(a, b map[string]Action) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSetupRepairsDrift(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	// Someone deletes a tap, takes the bridge down, flips forwarding off
	// and flushes the rules.
	h.links.Delete("banger0-tap3")
	h.links.change("banger0", func(l *LinkInfo) error { l.Up = false; return nil })
	h.sysctl.vals[forwardKey] = "0"
	h.fw.table = nil

	st := h.sys.Status(ctx, spec)
	for _, name := range []string{"bridge", "taps", "ip-forward", "nat"} {
		if p := st.Piece(name); p.State == StateOK || p.Fix == "" {
			t.Errorf("status of %s = %+v, want a problem with a fix", name, p)
		}
	}
	r, err := h.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"bridge": Changed, "taps": Changed, "ip-forward": Changed, "nat": Created, "resolved": Unchanged, "unit": Unchanged, "egress": Unchanged}
	if got := actions(r); !equalMaps(got, want) {
		t.Errorf("repair actions = %v, want %v", got, want)
	}
	if !h.sys.Status(ctx, spec).Ready() {
		t.Error("not ready after repair")
	}
}

func TestSetupRefusesInterfacesItDidNotCreate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		link  LinkInfo
		owner string
	}{
		{"foreign bridge", LinkInfo{Name: "banger0", Kind: "bridge"}, "banger0"},
		{"foreign tap name", LinkInfo{Name: "banger0-tap2", Kind: "veth"}, "banger0-tap2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.links.add(tc.link)
			_, err := h.sys.Setup(ctx, testSpec(), SetupOptions{})
			if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), tc.owner) {
				t.Fatalf("Setup err = %v, want a conflict naming %s", err, tc.owner)
			}
			if l, _ := h.links.Link(tc.link.Name); l.Alias != "" || l.Up {
				t.Errorf("Setup changed the foreign interface: %+v", l)
			}
		})
	}
}

func TestSetupChangesTapOwnerAndPoolSize(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	// A VM runs on tap0 of the old pool; shrink the pool to 2 and keep the owner.
	h.links.change("banger0-tap0", func(l *LinkInfo) error { l.Carrier = true; return nil })
	h.links.change("banger0-tap5", func(l *LinkInfo) error { l.Carrier = true; return nil })
	spec.Taps = 2
	r, err := h.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	links, _ := h.links.Links()
	var taps []string
	for _, l := range links {
		if l.Tap != nil {
			taps = append(taps, l.Name)
		}
	}
	if got, want := strings.Join(taps, " "), "banger0-tap0 banger0-tap1 banger0-tap5"; got != want {
		t.Errorf("taps after shrinking = %s, want %s (tap5 is in use, so kept)", got, want)
	}
	if !strings.Contains(r.Changes[1].Detail, "kept surplus in use banger0-tap5") {
		t.Errorf("taps detail = %q", r.Changes[1].Detail)
	}

	// Another user: a tap in use cannot change owner.
	spec.UID = 2000
	_, err = h.sys.Setup(ctx, spec, SetupOptions{})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "banger0-tap0") {
		t.Fatalf("owner change with a busy tap: err = %v, want a conflict naming banger0-tap0", err)
	}
	h.links.change("banger0-tap0", func(l *LinkInfo) error { l.Carrier = false; return nil })
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := h.links.Link("banger0-tap0"); l.Tap.Owner != 2000 || l.Master != "banger0" || !l.Up {
		t.Errorf("tap0 after owner change = %+v", l)
	}
}

func TestSetupRefusesReaddressingWhileVMsRun(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	h.links.change("banger0-tap3", func(l *LinkInfo) error { l.Carrier = true; return nil })
	before, _ := h.links.Link("banger0")

	changed := []func(*Spec){
		func(s *Spec) {
			s.CIDR = netip.MustParsePrefix("10.50.0.0/24")
			s.BridgeIP = netip.MustParseAddr("10.50.0.1")
		},
		func(s *Spec) { s.BridgeIP = netip.MustParseAddr("172.16.0.254") },
		func(s *Spec) { s.Bridge = "vmbr1" },
	}
	for i, change := range changed {
		next := spec
		change(&next)
		_, err := h.sys.Setup(ctx, next, SetupOptions{})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "banger0-tap3") || !strings.Contains(err.Error(), "banger vm stop") {
			t.Fatalf("change %d with a busy tap: err = %v, want a conflict naming banger0-tap3 and the fix", i, err)
		}
		if after, _ := h.links.Link("banger0"); !slices.Equal(after.Addrs, before.Addrs) {
			t.Fatalf("change %d: bridge addresses changed to %v despite the refusal", i, after.Addrs)
		}
		if rec, _ := h.sys.ReadRecord(); rec == nil || rec.Spec != spec {
			t.Fatalf("change %d: record = %+v, want the old spec kept", i, rec)
		}
	}

	// Same addresses with a busy tap is fine (setup repairs, changes nothing).
	if r, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil || r.Changed() {
		t.Fatalf("unchanged spec with a busy tap: changed=%v err=%v", r.Changed(), err)
	}
	// Once the VM is gone the change goes through.
	h.links.change("banger0-tap3", func(l *LinkInfo) error { l.Carrier = false; return nil })
	next := spec
	changed[0](&next)
	if _, err := h.sys.Setup(ctx, next, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSetupFollowsABridgeRename(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	spec.Bridge = "vmbr1"
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.links.Link("banger0"); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("old bridge still there: %v", err)
	}
	if _, err := h.links.Link("banger0-tap0"); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("old taps still there: %v", err)
	}
	if !h.sys.Status(ctx, spec).Ready() {
		t.Error("new bridge not ready")
	}
}

func TestTeardownRemovesOnlyWhatSetupMade(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	h.links.add(LinkInfo{Name: "eth0", Kind: "device", Up: true})
	h.sysctl.vals[forwardKey] = "1" // already on: teardown must leave it on
	spec := testSpec()
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	h.links.change("banger0-tap1", func(l *LinkInfo) error { l.Carrier = true; return nil })
	if _, err := h.sys.Teardown(ctx, spec, TeardownOptions{}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "banger0-tap1") {
		t.Fatalf("Teardown with a busy tap: err = %v, want a conflict naming it", err)
	}
	if _, err := h.links.Link("banger0"); err != nil {
		t.Fatal("refused teardown removed the bridge")
	}
	h.links.change("banger0-tap1", func(l *LinkInfo) error { l.Carrier = false; return nil })
	r, err := h.sys.Teardown(ctx, spec, TeardownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"bridge": Removed, "taps": Removed, "ip-forward": Unchanged, "nat": Removed, "resolved": Removed, "unit": Removed, "egress": Removed}
	if got := actions(r); !equalMaps(got, want) {
		t.Errorf("teardown actions = %v, want %v", got, want)
	}
	links, _ := h.links.Links()
	if len(links) != 1 || links[0].Name != "eth0" {
		t.Errorf("links after teardown = %+v, want only eth0", links)
	}
	if h.sysctl.vals[forwardKey] != "1" || h.fw.table != nil || len(h.resolved.links) != 0 || len(h.units.units) != 0 {
		t.Errorf("host after teardown: forward=%s table=%v resolved=%v units=%v", h.sysctl.vals[forwardKey], h.fw.table, h.resolved.links, h.units.units)
	}
	if rec, _ := h.sys.ReadRecord(); rec != nil {
		t.Errorf("record after teardown = %+v", rec)
	}
	// Twice is fine and changes nothing.
	r, err = h.sys.Teardown(ctx, spec, TeardownOptions{})
	if err != nil || r.Changed() {
		t.Errorf("second teardown = %+v, %v; want no change", r, err)
	}
}

func TestTeardownRestoresForwardingItTurnedOn(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	if _, err := h.sys.Setup(ctx, testSpec(), SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	// Setup from the boot unit after a reboot: forwarding is off again.
	h.sysctl.vals[forwardKey] = "0"
	if _, err := h.sys.Setup(ctx, testSpec(), SetupOptions{SkipUnit: true}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := h.sys.ReadRecord(); rec.Unit != UnitName || !rec.ForwardEnabled {
		t.Errorf("record after boot setup = %+v; want the unit and forwarding remembered", rec)
	}
	if _, err := h.sys.Teardown(ctx, Spec{}, TeardownOptions{}); err != nil {
		t.Fatal(err)
	}
	if h.sysctl.vals[forwardKey] != "0" {
		t.Errorf("ip_forward after teardown = %s, want 0", h.sysctl.vals[forwardKey])
	}
}

func TestStatusWithoutRootOrSystemd(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	h.resolved.available, h.units.available = false, false
	spec := testSpec()
	r, err := h.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(r); a["resolved"] != Skipped || a["unit"] != Skipped {
		t.Errorf("setup without systemd: %v", a)
	}
	h.fw.denied = true
	st := h.sys.Status(ctx, spec)
	if !st.Ready() {
		t.Errorf("status not ready: %+v", st)
	}
	for name, want := range map[string]State{"nat": StateUnknown, "resolved": StateOff, "unit": StateOff, "bridge": StateOK} {
		if p := st.Piece(name); p.State != want {
			t.Errorf("%s = %+v, want %s", name, p, want)
		}
	}
	if p := st.Piece("nat"); !strings.Contains(p.Detail, "system setup ran at") {
		t.Errorf("nat detail = %q, want the setup time from the record", p.Detail)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Spec)
		want string
	}{
		{func(s *Spec) {}, ""},
		{func(s *Spec) { s.Bridge = "abcdefgh-tap1" }, "also the name of one of its taps"},
		{func(s *Spec) { s.BridgeIP = netip.MustParseAddr("10.0.0.1") }, "outside cidr"},
		{func(s *Spec) { s.Taps = 0 }, "tap_pool_size"},
		{func(s *Spec) { s.UID = -1 }, "not a user"},
	} {
		s := testSpec()
		tc.mod(&s)
		err := s.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", s, err, tc.want)
		}
	}
}

// TestRecordsKeyedByUserBridgeNamespace: setup writes its record under
// its user and bridge, adopts the single record older versions kept, and
// refuses to replace another user's network on another bridge in the same
// namespace, whose teardown it also refuses to do.
func TestRecordsKeyedByUserBridgeNamespace(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	legacy := filepath.Join(h.sys.stateDir, legacyRecordFile)
	if err := os.WriteFile(legacy, []byte(`{"spec":{"bridge":"banger0","bridge_ip":"172.16.0.1","cidr":"172.16.0.0/24","taps":8,"uid":1000,"gid":1000},"forward_enabled":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec, err := h.sys.ReadRecord(); err != nil || rec == nil || !rec.ForwardEnabled {
		t.Fatalf("legacy record read as %+v, %v", rec, err)
	}
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("legacy record still there after setup: %v", err)
	}
	keyed := filepath.Join(h.sys.stateDir, "network-1000-banger0.json")
	if rec, err := readRecordFile(keyed); err != nil || !rec.ForwardEnabled || rec.Spec != spec {
		t.Errorf("keyed record = %+v, %v; want the legacy one's ForwardEnabled carried over", rec, err)
	}

	other := spec
	other.UID, other.GID, other.Bridge = 1001, 1001, "vmbr9"
	if _, err := h.sys.Setup(ctx, other, SetupOptions{}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "banger0") {
		t.Errorf("setup of another user's bridge in the same namespace: %v; want a conflict naming banger0", err)
	}
	if _, err := h.sys.Teardown(ctx, other, TeardownOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("teardown by another user: %v; want a conflict", err)
	}
	if _, err := h.links.Link("banger0"); err != nil {
		t.Errorf("banger0 after the other user's refused setup and teardown: %v", err)
	}
	if _, err := os.Stat(keyed); err != nil {
		t.Errorf("record after the other user's refused teardown: %v", err)
	}
}

// TestRecordNameEscapesTheSeparator: a bridge whose name holds '@' (the
// kernel allows it) keeps its record in the host namespace.
func TestRecordNameEscapesTheSeparator(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	spec.Bridge = "br@x"
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := recordName(spec, Namespace{}); got != "network-1000-br%40x.json" {
		t.Errorf("record name = %q", got)
	}
	if rec, err := h.sys.ReadRecord(); err != nil || rec == nil || rec.Spec.Bridge != "br@x" {
		t.Errorf("record = %+v, %v; want the one for br@x", rec, err)
	}
}
