package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"banger/api/errdefs"
	"banger/internal/config"
)

// Action is what a step of Setup or Teardown did to one piece.
type Action string

const (
	Created   Action = "created"
	Changed   Action = "changed" // repaired, or a setting switched
	Unchanged Action = "unchanged"
	Removed   Action = "removed"
	Skipped   Action = "skipped" // not applicable here; Detail says why
)

// Change is one line of a Report.
type Change struct {
	Piece  string `json:"piece"` // bridge, taps, ip-forward, nat, resolved, unit
	Action Action `json:"action"`
	Detail string `json:"detail,omitempty"`
}

// Report lists what Setup or Teardown did, piece by piece.
type Report struct {
	Changes []Change `json:"changes"`
}

// Changed reports whether anything on the host changed.
func (r Report) Changed() bool {
	for _, c := range r.Changes {
		if c.Action != Unchanged && c.Action != Skipped {
			return true
		}
	}
	return false
}

func (r *Report) add(piece string, a Action, detail string, args ...any) {
	r.Changes = append(r.Changes, Change{Piece: piece, Action: a, Detail: fmt.Sprintf(detail, args...)})
}

// SetupOptions tune Setup. The zero value sets up everything.
type SetupOptions struct {
	// SkipUnit leaves the boot unit alone: set when running from it, or
	// from a daemon that sets up the network itself at every start.
	SkipUnit bool
}

// SetupHost sets up the network cfg asks for, owned by the calling user,
// without a boot unit. A daemon running as root calls it at start.
func SetupHost(ctx context.Context, cfg config.Config, opts ...Option) (Report, error) {
	spec := SpecFromConfig(cfg, os.Getuid(), os.Getgid())
	return NewSystem(opts...).Setup(ctx, spec, SetupOptions{SkipUnit: true})
}

// Setup creates or repairs everything spec needs, measuring each piece
// first and touching only what differs: running it twice changes nothing
// the second time. It records what it did (ReadRecord) for Teardown and
// the boot unit.
func (s *System) Setup(ctx context.Context, spec Spec, o SetupOptions) (r Report, err error) {
	if err := spec.Validate(); err != nil {
		return r, errdefs.Invalid("setting up the host network: %v", err)
	}
	ns, err := s.netns()
	if err != nil {
		return r, err
	}
	old, err := s.nsRecord(ns)
	if err != nil {
		return r, err
	}
	rec := Record{Spec: spec}
	if old != nil {
		if err := refuseAnotherNetwork(old, spec, ns); err != nil {
			return r, err
		}
		if err := s.refuseReaddressingBusyTaps(old.Spec, spec); err != nil {
			return r, err
		}
		rec.ForwardEnabled, rec.Resolved, rec.Unit, rec.EgressUnit = old.ForwardEnabled, old.Resolved, old.Unit, old.EgressUnit
		if old.Spec.Bridge != spec.Bridge {
			if err := s.removeLinks(&r, old.Spec.Bridge, false); err != nil {
				return r, fmt.Errorf("removing the previous bridge %s: %w", old.Spec.Bridge, err)
			}
		}
	}
	defer func() {
		// Record even a partial setup: teardown must know what to undo.
		if _, werr := s.writeRecord(rec, ns, old); werr != nil && err == nil {
			err = werr
		}
	}()
	if err := s.ensureBridge(&r, spec); err != nil {
		return r, fmt.Errorf("setting up bridge %s: %w", spec.Bridge, err)
	}
	if err := s.ensureTaps(&r, spec); err != nil {
		return r, fmt.Errorf("setting up the taps of %s: %w", spec.Bridge, err)
	}
	if rec.ForwardEnabled, err = s.ensureForward(&r, rec.ForwardEnabled); err != nil {
		return r, fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	if err := s.ensureFirewall(&r, spec); err != nil {
		return r, fmt.Errorf("setting up NAT: %w", err)
	}
	if rec.Resolved, err = s.ensureResolved(&r, spec, rec.Resolved); err != nil {
		return r, fmt.Errorf("routing *.%s lookups to banger: %w", Domain, err)
	}
	if rec.Unit, err = s.ensureUnit(&r, spec, o, rec.Unit, ns); err != nil {
		return r, fmt.Errorf("installing %s: %w", UnitName, err)
	}
	if rec.EgressUnit, err = s.ensureEgressUnit(&r, spec, o, rec.EgressUnit, ns); err != nil {
		return r, fmt.Errorf("installing %s: %w", EgressUnitName, err)
	}
	return r, nil
}

// refuseAnotherNetwork refuses to set up spec where another user's
// network on another bridge is: the namespace's nftables table, IPv4
// forwarding and DNS routing serve one banger network, and replacing them
// would cut that one off. The same user on a new bridge is a rename; a new
// owner of the same bridge takes it over.
func refuseAnotherNetwork(old *storedRecord, spec Spec, ns Namespace) error {
	if old.Spec.UID == spec.UID || old.Spec.Bridge == spec.Bridge {
		return nil
	}
	return errdefs.Conflict("%s already has a banger network: bridge %s for user %d (record %s); use that bridge (bridge_name in config.toml), or remove it first with 'sudo \"$(command -v banger)\" system teardown --user %d'",
		ns, old.Spec.Bridge, old.Spec.UID, old.path, old.Spec.UID)
}

// refuseReaddressingBusyTaps refuses a change of bridge, bridge address
// or CIDR while a VM holds one of the old bridge's TAPs open: the guest
// would keep its old address and gateway, and the daemon its old leases,
// on a bridge that no longer routes them.
func (s *System) refuseReaddressingBusyTaps(old, spec Spec) error {
	changed := settingChanges(old.settings(), spec.settings())
	if len(changed) == 0 {
		return nil
	}
	busy, err := s.busyTaps(old.Bridge)
	if err != nil || len(busy) == 0 {
		return err
	}
	return errdefs.Conflict("%s while running VMs use %s; stop those VMs ('banger vm stop NAME'), or restore the old values in config.toml, then run %s again",
		strings.Join(changed, ", "), strings.Join(busy, ", "), setupQuoted)
}

func (s *System) ensureBridge(r *Report, spec Spec) error {
	action := Unchanged
	l, err := s.links.Link(spec.Bridge)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		if err := s.links.AddBridge(spec.Bridge, MAC(spec.BridgeIP)); err != nil {
			return err
		}
		if err := s.links.SetAlias(spec.Bridge, bridgeAlias); err != nil {
			return err
		}
		if l, err = s.links.Link(spec.Bridge); err != nil {
			return err
		}
		action = Created
	case err != nil:
		return err
	case l.Kind != "bridge" || l.Alias != bridgeAlias:
		return notOurs(spec.Bridge, l)
	}
	var fixed []string
	if !l.Up {
		if err := s.links.SetUp(spec.Bridge); err != nil {
			return err
		}
		fixed = append(fixed, "brought it up")
	}
	want, has := spec.bridgeAddr(), false
	for _, a := range l.Addrs {
		if a == want {
			has = true
			continue
		}
		if err := s.links.DelAddr(spec.Bridge, a); err != nil {
			return err
		}
		fixed = append(fixed, "removed old address "+a.String())
	}
	if !has {
		if err := s.links.AddAddr(spec.Bridge, want); err != nil {
			return err
		}
		fixed = append(fixed, "added "+want.String())
	}
	switch {
	case action == Created:
		fixed = nil
	case len(fixed) > 0:
		action = Changed
	}
	r.add("bridge", action, "%s with %s%s", spec.Bridge, want, suffix(fixed))
	return nil
}

func notOurs(name string, l LinkInfo) error {
	return errdefs.Conflict("interface %s (%s) exists but banger did not create it; set bridge_name in config.toml to a name not in use, then run %s",
		name, l.Kind, setupQuoted)
}

func (s *System) ensureTaps(r *Report, spec Spec) error {
	all, err := s.links.Links()
	if err != nil {
		return err
	}
	byName := map[string]LinkInfo{}
	for _, l := range all {
		byName[l.Name] = l
	}
	var created, fixed, removed, kept []string
	for _, name := range TapNames(spec.Bridge, spec.Taps) {
		l, ok := byName[name]
		if ok && (l.Tap == nil || !l.Tap.TAP || l.Alias != tapAlias) {
			return errdefs.Conflict("interface %s exists but is not one of banger's taps; delete it ('sudo ip link delete %s') or pick another bridge_name in config.toml", name, name)
		}
		recreate := ok && (l.Tap.Owner != spec.UID || l.Tap.Group != spec.GID)
		if recreate {
			if l.Carrier {
				return errdefs.Conflict("tap %s belongs to %d:%d, not %d:%d, and a running VM uses it; stop that VM, then run %s again",
					name, l.Tap.Owner, l.Tap.Group, spec.UID, spec.GID, setupQuoted)
			}
			if err := s.links.Delete(name); err != nil {
				return err
			}
		}
		if !ok || recreate {
			if err := s.addTap(name, spec); err != nil {
				return err
			}
			if recreate {
				fixed = append(fixed, name+" (new owner)")
			} else {
				created = append(created, name)
			}
			continue
		}
		if l.Master != spec.Bridge || !l.Up {
			if err := s.attachTap(name, spec, l); err != nil {
				return err
			}
			fixed = append(fixed, name)
		}
	}
	for _, l := range all {
		if i, ok := tapIndex(spec.Bridge, l.Name); !ok || i < spec.Taps || l.Alias != tapAlias {
			continue
		}
		if l.Carrier {
			kept = append(kept, l.Name)
			continue
		}
		if err := s.links.Delete(l.Name); err != nil {
			return err
		}
		removed = append(removed, l.Name)
	}
	r.add("taps", tapsAction(spec.Taps, created, fixed, removed), "%d on %s owned by %d:%d%s%s%s%s", spec.Taps, spec.Bridge, spec.UID, spec.GID,
		listed("created", created), listed("repaired", fixed), listed("removed surplus", removed), listed("kept surplus in use", kept))
	return nil
}

func (s *System) addTap(name string, spec Spec) error {
	if err := s.links.AddTap(name, spec.UID, spec.GID); err != nil {
		return err
	}
	if err := s.links.SetAlias(name, tapAlias); err != nil {
		return err
	}
	return s.attachTap(name, spec, LinkInfo{})
}

// attachTap puts a TAP on the bridge and brings it up: the VMMs open it
// as it is and bring up nothing themselves.
func (s *System) attachTap(name string, spec Spec, l LinkInfo) error {
	if l.Master != spec.Bridge {
		if err := s.links.SetMaster(name, spec.Bridge); err != nil {
			return err
		}
	}
	if !l.Up {
		return s.links.SetUp(name)
	}
	return nil
}

// tapsAction is Created when the whole pool is new.
func tapsAction(total int, created, fixed, removed []string) Action {
	switch {
	case len(created) == total && len(fixed) == 0 && len(removed) == 0:
		return Created
	case len(created)+len(fixed)+len(removed) > 0:
		return Changed
	}
	return Unchanged
}

// ensureForward turns IPv4 forwarding on, reporting whether banger is
// the one that turned it on (now or at an earlier setup).
func (s *System) ensureForward(r *Report, enabledBefore bool) (bool, error) {
	v, err := s.sysctl.Get(forwardKey)
	if err != nil {
		return enabledBefore, err
	}
	if v == "1" {
		why := "was on before banger; teardown leaves it on"
		if enabledBefore {
			why = "banger turned it on; teardown turns it off"
		}
		r.add("ip-forward", Unchanged, "on (%s)", why)
		return enabledBefore, nil
	}
	if err := s.sysctl.Set(forwardKey, "1"); err != nil {
		return enabledBefore, err
	}
	r.add("ip-forward", Changed, "turned on (was %s; teardown turns it off again)", v)
	return true, nil
}

func (s *System) ensureFirewall(r *Report, spec Spec) error {
	want := spec.firewall()
	present, diff, err := s.fw.Check(want)
	if err != nil {
		return err
	}
	if present && diff == "" {
		r.add("nat", Unchanged, "nftables table ip %s", TableName)
		return nil
	}
	if err := s.fw.Apply(want); err != nil {
		return err
	}
	if !present {
		r.add("nat", Created, "nftables table ip %s: masquerade %s, forwarding for %s, DNS %s:53 to port %d",
			TableName, spec.CIDR, spec.Bridge, spec.BridgeIP, DNSPort)
	} else {
		r.add("nat", Changed, "rewrote nftables table ip %s (%s)", TableName, diff)
	}
	return nil
}

func (s *System) ensureResolved(r *Report, spec Spec, before bool) (bool, error) {
	if !s.resolved.Available() {
		r.add("resolved", Skipped, "systemd-resolved is not running, so *.%s names do not resolve on the host; ssh NAME.%s works without it through banger's ssh config (Include ~/.config/banger/ssh/config); for other programs point your resolver's %q domain at %s",
			Domain, Domain, Domain, spec.BridgeIP)
		return before, nil
	}
	ok, err := s.resolved.Check(spec.Bridge, spec.BridgeIP, Domain)
	if err != nil {
		return before, err
	}
	if ok {
		r.add("resolved", Unchanged, "*.%s lookups go to %s on %s", Domain, spec.BridgeIP, spec.Bridge)
		return true, nil
	}
	if err := s.resolved.Configure(spec.Bridge, spec.BridgeIP, Domain); err != nil {
		return before, err
	}
	r.add("resolved", Created, "*.%s lookups go to %s on %s", Domain, spec.BridgeIP, spec.Bridge)
	return true, nil
}

func (s *System) ensureUnit(r *Report, spec Spec, o SetupOptions, before string, ns Namespace) (string, error) {
	switch {
	case o.SkipUnit:
		r.add("unit", Skipped, "not asked to install %s", UnitName)
		return before, nil
	case !ns.Host():
		r.add("unit", Skipped, "%s is not the host's, so no boot unit rebuilds it; run %s in it again after each boot", ns, setupQuoted)
		return before, nil
	case !s.units.Available():
		r.add("unit", Skipped, "systemd is not running here; run %s again after each boot", setupQuoted)
		return before, nil
	}
	content := unitContent(s.exe, spec)
	ok, err := s.units.Check(UnitName, content)
	if err != nil {
		return before, err
	}
	if ok {
		r.add("unit", Unchanged, "%s is enabled", UnitName)
		return UnitName, nil
	}
	if err := s.units.Install(UnitName, content); err != nil {
		return before, err
	}
	r.add("unit", Created, "%s enabled: rebuilds this network at boot (runs %s)", UnitName, s.exe)
	return UnitName, nil
}

// ensureEgressUnit installs, enables and (re)starts the egress helper of
// spec's user, so that user's unprivileged daemon can enforce egress
// policies. A root daemon writes the tables itself and needs none.
func (s *System) ensureEgressUnit(r *Report, spec Spec, o SetupOptions, before string, ns Namespace) (string, error) {
	run := egressHelperCommand(spec)
	switch {
	case spec.UID == 0:
		r.add("egress", Skipped, "a daemon running as root writes its egress tables itself")
		return before, nil
	case o.SkipUnit:
		r.add("egress", Skipped, "not asked to install %s", EgressUnitName)
		return before, nil
	case !ns.Host():
		r.add("egress", Skipped, "%s is not the host's, so no unit runs the egress helper; to enforce egress policies keep '%s' running in it", ns, run)
		return before, nil
	case !s.units.Available():
		r.add("egress", Skipped, "systemd is not running here; to enforce egress policies keep '%s' running (start it again after each boot)", run)
		return before, nil
	}
	content := egressUnitContent(s.exe, spec)
	ok, err := s.units.Check(EgressUnitName, content)
	if err != nil {
		return before, err
	}
	if ok {
		r.add("egress", Unchanged, "%s is enabled", EgressUnitName)
		return EgressUnitName, nil
	}
	if err := s.units.Install(EgressUnitName, content); err != nil {
		return before, err
	}
	if err := s.units.Restart(EgressUnitName); err != nil {
		return EgressUnitName, err
	}
	r.add("egress", Created, "%s enabled and started: applies uid %d's egress policies (socket in %s)", EgressUnitName, spec.UID, EgressHelperDir)
	return EgressUnitName, nil
}

func suffix(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return "; " + strings.Join(items, ", ")
}

func listed(what string, items []string) string {
	if len(items) == 0 {
		return ""
	}
	return "; " + what + " " + strings.Join(items, ", ")
}
