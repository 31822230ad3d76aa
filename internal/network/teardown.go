package network

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"banger/api/errdefs"
)

// TeardownOptions tune Teardown.
type TeardownOptions struct {
	// Force removes TAPs even while VMs use them (those VMs lose their
	// network).
	Force bool
}

// Teardown removes what Setup created and nothing else: the boot unit,
// the resolved routing, banger's nftables table, the TAPs and bridge that
// carry banger's alias; it turns IPv4 forwarding off only if banger turned
// it on. It follows the setup record; without one it removes what fallback
// names, still only interfaces marked as banger's.
func (s *System) Teardown(ctx context.Context, fallback Spec, o TeardownOptions) (Report, error) {
	var r Report
	ns, err := s.netns()
	if err != nil {
		return r, err
	}
	stored, err := s.nsRecord(ns)
	if err != nil {
		return r, err
	}
	spec := fallback
	var rec *Record
	if stored != nil {
		if fallback.Bridge != "" && stored.Spec.UID != fallback.UID && stored.Spec.Bridge != fallback.Bridge {
			return r, errdefs.Conflict("the banger network in %s is bridge %s of user %d (record %s), not bridge %s of user %d; remove it with --user %d, or leave it",
				ns, stored.Spec.Bridge, stored.Spec.UID, stored.path, fallback.Bridge, fallback.UID, stored.Spec.UID)
		}
		rec, spec = &stored.Record, stored.Spec
	}
	if !o.Force {
		if busy, err := s.busyTaps(spec.Bridge); err != nil {
			return r, err
		} else if len(busy) > 0 {
			return r, errdefs.Conflict("taps %s are in use by running VMs; stop those VMs first, or pass --force to remove the network from under them",
				strings.Join(busy, ", "))
		}
	}
	if err := s.removeUnit(&r, ns); err != nil {
		return r, fmt.Errorf("removing %s: %w", UnitName, err)
	}
	if err := s.revertResolved(&r, spec, rec); err != nil {
		return r, fmt.Errorf("removing the *.%s routing: %w", Domain, err)
	}
	existed, err := s.fw.Remove()
	if err != nil {
		return r, fmt.Errorf("removing NAT: %w", err)
	}
	r.add("nat", removedOrAbsent(existed), "nftables table ip %s", TableName)
	if err := s.removeLinks(&r, spec.Bridge, o.Force); err != nil {
		return r, err
	}
	if err := s.restoreForward(&r, rec); err != nil {
		return r, fmt.Errorf("restoring IPv4 forwarding: %w", err)
	}
	return r, removeRecord(stored)
}

func removedOrAbsent(existed bool) Action {
	if existed {
		return Removed
	}
	return Unchanged
}

// busyTaps lists banger's TAPs of bridge that a process holds open.
func (s *System) busyTaps(bridge string) ([]string, error) {
	taps, err := s.ourTaps(bridge)
	var busy []string
	for _, l := range taps {
		if l.Carrier {
			busy = append(busy, l.Name)
		}
	}
	return busy, err
}

func (s *System) ourTaps(bridge string) ([]LinkInfo, error) {
	all, err := s.links.Links()
	if err != nil {
		return nil, err
	}
	var out []LinkInfo
	for _, l := range all {
		if _, ok := tapIndex(bridge, l.Name); ok && l.Alias == tapAlias && l.Tap != nil {
			out = append(out, l)
		}
	}
	return out, nil
}

func (s *System) removeUnit(r *Report, ns Namespace) error {
	if !ns.Host() {
		r.add("unit", Skipped, "%s is not the host's, so its network has no boot unit", ns)
		return nil
	}
	if !s.units.Available() {
		r.add("unit", Skipped, "systemd is not running here")
		return nil
	}
	existed, err := s.units.Remove(UnitName)
	if err != nil {
		return err
	}
	r.add("unit", removedOrAbsent(existed), "%s", UnitName)
	if existed, err = s.units.Remove(EgressUnitName); err != nil {
		return err
	}
	r.add("egress", removedOrAbsent(existed), "%s", EgressUnitName)
	return nil
}

func (s *System) revertResolved(r *Report, spec Spec, rec *Record) error {
	if !s.resolved.Available() || (rec != nil && !rec.Resolved) {
		r.add("resolved", Skipped, "banger did not configure systemd-resolved")
		return nil
	}
	if _, err := s.links.Link(spec.Bridge); errors.Is(err, ErrLinkNotFound) {
		r.add("resolved", Unchanged, "no bridge %s, so no routing to remove", spec.Bridge)
		return nil
	}
	if err := s.resolved.Revert(spec.Bridge); err != nil {
		return err
	}
	r.add("resolved", Removed, "*.%s routing on %s", Domain, spec.Bridge)
	return nil
}

// removeLinks deletes banger's TAPs of bridge, then the bridge if banger
// created it.
func (s *System) removeLinks(r *Report, bridge string, force bool) error {
	taps, err := s.ourTaps(bridge)
	if err != nil {
		return err
	}
	var names []string
	for _, l := range taps {
		if l.Carrier && !force {
			return errdefs.Conflict("tap %s is in use by a running VM; stop it first", l.Name)
		}
		if err := s.links.Delete(l.Name); err != nil {
			return err
		}
		names = append(names, l.Name)
	}
	if len(names) == 0 {
		r.add("taps", Unchanged, "%s has no banger taps", bridge)
	} else {
		r.add("taps", Removed, "%s", strings.Join(names, ", "))
	}
	l, err := s.links.Link(bridge)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		r.add("bridge", Unchanged, "%s does not exist", bridge)
		return nil
	case err != nil:
		return err
	case l.Alias != bridgeAlias:
		r.add("bridge", Skipped, "%s was not created by banger; left alone", bridge)
		return nil
	}
	if err := s.links.Delete(bridge); err != nil {
		return err
	}
	r.add("bridge", Removed, "%s", bridge)
	return nil
}

func (s *System) restoreForward(r *Report, rec *Record) error {
	if rec == nil || !rec.ForwardEnabled {
		r.add("ip-forward", Unchanged, "left as it was: banger did not turn it on")
		return nil
	}
	if err := s.sysctl.Set(forwardKey, "0"); err != nil {
		return err
	}
	r.add("ip-forward", Changed, "turned off again (banger had turned it on)")
	return nil
}
