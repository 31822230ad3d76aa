package vms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/network"
	"banger/internal/store"
)

// PolicyNetwork is a Network that enforces egress policies (HostNetwork
// does, once EnforceEgress gave it the host's rules).
type PolicyNetwork interface {
	// SyncEgress applies the recorded policy of every VM that holds an
	// address. Running it twice changes nothing.
	SyncEgress(ctx context.Context) error
	// EgressEnforced reports whether policies reach the host; when not,
	// only the default full policy may be asked for.
	EgressEnforced() bool
	// EgressRefusal says why policies are not enforced and what fixes it.
	EgressRefusal() error
}

// Intervals of the denial events: counters are read every
// egressPollEvery; a VM gets at most one event per egressEventEvery,
// summing what was denied in between.
const (
	egressPollEvery  = 2 * time.Second
	egressEventEvery = 10 * time.Second
	maxRefusedNames  = 5
)

// egressCtl keeps the VMs' policies on the host: it syncs banger's egress
// table from the state database, answers banger's DNS server
// (network.EgressDNS) and turns deny counters and refused names into
// rate-limited events.
type egressCtl struct {
	cfg  config.Config
	st   *store.Store
	spec network.EgressSpec

	// syncMu keeps syncs in order: each reads the state database and
	// applies what it read, so a later read is never overwritten by an
	// earlier one.
	syncMu sync.Mutex

	// mu guards what follows. It is never held while the rules are
	// looked for or applied (a dial and a round trip to the egress
	// helper, or an nftables transaction): the DNS server's policy
	// lookups take it.
	mu    sync.Mutex
	rules network.Egress // nil: not enforced
	// find looks for rules while there are none (EnforceEgressWith);
	// why is its last error, lastFind when it ran, finding while it runs.
	find     func() (network.Egress, error)
	why      error
	lastFind time.Time
	finding  bool
	// unsynced: rules were found, or the last sync failed, so the
	// recorded policies may not all be applied: the poll syncs.
	unsynced bool
	byAddr   map[netip.Addr]vmEgress
	pending  map[netip.Addr]*denials
	log      *slog.Logger

	stop chan struct{}
	done sync.WaitGroup
}

type vmEgress struct {
	name   string
	policy network.EgressPolicy
}

type denials struct {
	packets uint64
	names   []string
	more    int
	last    time.Time // of the last event
}

func newEgressCtl(cfg config.Config, st *store.Store) *egressCtl {
	return &egressCtl{
		cfg: cfg, st: st,
		spec:   network.EgressSpec{Bridge: cfg.BridgeName, BridgeIP: cfg.BridgeIP, CIDR: cfg.CIDR, DNSPort: network.DNSPort},
		byAddr: map[netip.Addr]vmEgress{}, pending: map[netip.Addr]*denials{},
		log: slog.New(slog.DiscardHandler),
	}
}

// EnforceEgress makes n apply egress policies with rules (the host's
// nftables: network.HostEgress()) and starts reading the deny counters;
// Close stops it. Without it policies are recorded but not enforced.
func (n *HostNetwork) EnforceEgress(rules network.Egress, log *slog.Logger) {
	e := n.egress
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e.mu.Lock()
	e.rules, e.log = rules, log
	e.mu.Unlock()
	e.stop = make(chan struct{})
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		t := time.NewTicker(egressPollEvery)
		defer t.Stop()
		var failed string // the last failure logged, so a lasting one is logged once
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				if e.needsSync() {
					err := n.SyncEgress(context.Background())
					switch {
					case err != nil && err.Error() != failed:
						e.log.Warn("applying egress policies; trying again at every poll", "err", err)
						failed = err.Error()
					case err == nil && failed != "":
						e.log.Info("egress policies applied after failures")
						failed = ""
					}
				}
				e.poll()
			}
		}
	}()
}

// EnforceEgressWith is EnforceEgress with rules find returns
// (network.DaemonEgress). When find fails, policies other than full are
// refused with its error, and find is asked again (at most every
// egressPollEvery) before each sync and policy check, so an egress helper
// started after the daemon is picked up; the first sync after that
// applies every recorded policy.
func (n *HostNetwork) EnforceEgressWith(find func() (network.Egress, error), log *slog.Logger) {
	rules, err := find()
	n.EnforceEgress(rules, log)
	e := n.egress
	e.mu.Lock()
	e.find, e.why, e.lastFind = find, err, time.Now()
	e.mu.Unlock()
	if err != nil {
		e.log.Warn("egress policies other than full are refused until this is fixed", "why", err)
	}
}

// needsSync reports whether the recorded policies may not all be
// applied: rules were found (by this call or by a policy check) and no
// sync has reached them yet, or the last sync failed.
func (e *egressCtl) needsSync() bool {
	e.currentRules()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rules != nil && e.unsynced
}

// currentRules returns the rules, asking find again when there are none
// and it last ran egressPollEvery ago. find runs without e.mu held, one
// call at a time; callers meanwhile see no rules.
func (e *egressCtl) currentRules() network.Egress {
	e.mu.Lock()
	if e.rules != nil || e.find == nil || e.finding || time.Since(e.lastFind) < egressPollEvery {
		defer e.mu.Unlock()
		return e.rules
	}
	e.lastFind, e.finding = time.Now(), true
	find := e.find
	e.mu.Unlock()

	r, err := find()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.finding = false
	switch {
	case err != nil:
		e.why = err
	case e.rules == nil:
		e.rules, e.why, e.unsynced = r, nil, true
		e.log.Info("egress policies are enforced from now on")
	}
	return e.rules
}

// Close stops reading the deny counters and waits for it; the rules stay.
func (n *HostNetwork) Close() {
	if n.egress.stop != nil {
		close(n.egress.stop)
		n.egress.done.Wait()
		n.egress.stop = nil
	}
	// The helper's connection, when the rules go through one.
	n.egress.mu.Lock()
	defer n.egress.mu.Unlock()
	if c, ok := n.egress.rules.(io.Closer); ok {
		c.Close()
	}
}

// EgressDNS is what banger's DNS server asks about allow-mode VMs.
func (n *HostNetwork) EgressDNS() network.EgressDNS { return n.egress }

func (n *HostNetwork) EgressEnforced() bool {
	return n.egress.currentRules() != nil
}

// EgressRefusal says why policies are not enforced and what fixes it.
func (n *HostNetwork) EgressRefusal() error {
	n.egress.mu.Lock()
	defer n.egress.mu.Unlock()
	if n.egress.why != nil {
		return n.egress.why
	}
	return errors.New("it runs without CAP_NET_ADMIN and has no egress helper; run " + network.SetupCommand + ", which installs the helper, or run bangerd as root")
}

// SyncEgress reads every VM's address, policy and TAP and applies them.
func (n *HostNetwork) SyncEgress(ctx context.Context) error {
	e := n.egress
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	leases, err := e.st.Leases(ctx)
	if err != nil {
		return err
	}
	pols, err := e.st.VMNetworks(ctx)
	if err != nil {
		return err
	}
	held, err := e.st.TapAssignments(ctx)
	if err != nil {
		return err
	}
	taps := map[string]string{}
	for _, a := range held {
		taps[strings.ToLower(a.VM)] = a.Tap
	}
	byAddr := map[netip.Addr]vmEgress{}
	var vms []network.VMEgress
	for _, l := range leases {
		rec, ok := pols[l.VM]
		p := e.effective(rec, ok)
		byAddr[l.Addr] = vmEgress{name: l.VM, policy: p}
		vms = append(vms, network.VMEgress{Addr: l.Addr, Policy: p, Tap: taps[strings.ToLower(l.VM)]})
	}
	rules := e.currentRules()
	if rules != nil {
		e.mu.Lock()
		e.unsynced = false
		e.mu.Unlock()
		err = rules.Sync(e.spec, vms)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byAddr = byAddr
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		if e.rules == rules {
			e.rules, e.why = nil, fmt.Errorf("it may not change nftables (%w); run %s, which installs the egress helper, or run bangerd as root", err, network.SetupCommand)
		}
		e.log.Warn("egress policies are not enforced: the daemon may not change nftables (run it as root or with CAP_NET_ADMIN)", "err", err)
		return nil
	default:
		// Tried again at the next poll, until a sync succeeds.
		e.unsynced = e.unsynced || e.rules == rules
		return fmt.Errorf("applying egress policies: %w", err)
	}
}

// effective is the policy a VM's rules carry: the recorded one (full
// when none is, for VMs older than policies) with allow_private_networks
// from the config. A recorded policy this version no longer accepts
// fails closed: none, not full.
func (e *egressCtl) effective(p api.NetworkPolicy, recorded bool) network.EgressPolicy {
	lan := p.AllowLAN || e.cfg.AllowPrivateNetworks
	if !recorded {
		return network.EgressPolicy{Mode: network.EgressFull, AllowLAN: e.cfg.AllowPrivateNetworks}
	}
	out, err := network.ParseEgressPolicy(p.Mode, p.Allow, lan)
	if err != nil {
		e.log.Warn("a recorded egress policy does not parse; the vm gets none", "policy", p, "err", err)
		return network.EgressPolicy{Mode: network.EgressNone, AllowLAN: lan}
	}
	return out
}

func (e *egressCtl) PolicyOf(a netip.Addr) (network.EgressPolicy, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.byAddr[a]
	return v.policy, ok
}

func (e *egressCtl) Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error {
	e.mu.Lock()
	rules := e.rules
	e.mu.Unlock()
	if rules == nil {
		return nil
	}
	return rules.Learn(vm, ips, ttl)
}

func (e *egressCtl) Refused(vm netip.Addr, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.pendingOf(vm)
	name = printable(strings.TrimSuffix(name, "."))
	switch {
	case slices.Contains(d.names, name):
	case len(d.names) < maxRefusedNames:
		d.names = append(d.names, name)
	default:
		d.more++
	}
}

func (e *egressCtl) pendingOf(vm netip.Addr) *denials {
	d := e.pending[vm]
	if d == nil {
		d = &denials{}
		e.pending[vm] = d
	}
	return d
}

// poll reads the deny counters and records the events that are due.
func (e *egressCtl) poll() {
	e.mu.Lock()
	rules := e.rules
	e.mu.Unlock()
	if rules == nil {
		return
	}
	got, err := rules.Denied()
	if err != nil {
		e.log.Debug("reading egress deny counters", "err", err)
	}
	type event struct{ vm, msg string }
	var due []event
	now := time.Now()
	e.mu.Lock()
	for _, d := range got {
		e.pendingOf(d.Addr).packets += d.Packets
	}
	for addr, d := range e.pending {
		if d.packets == 0 && len(d.names) == 0 || now.Sub(d.last) < egressEventEvery {
			continue
		}
		vm, ok := e.byAddr[addr]
		if !ok {
			delete(e.pending, addr)
			continue
		}
		due = append(due, event{vm.name, denialMessage(vm, d)})
		*d = denials{last: now}
	}
	e.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].vm < due[j].vm })
	ctx := context.Background()
	for _, ev := range due {
		err := e.st.Tx(ctx, func(tx *store.Tx) error { return tx.AddEvent(ctx, "warn", "vm/"+ev.vm, ev.msg) })
		if err != nil {
			e.log.Warn("recording an egress event", "vm", ev.vm, "err", err)
		}
	}
}

func denialMessage(vm vmEgress, d *denials) string {
	var parts []string
	if d.packets > 0 {
		parts = append(parts, fmt.Sprintf("dropped %d packets to destinations its network policy (%s) denies", d.packets, vm.policy))
	}
	if len(d.names) > 0 {
		s := "refused DNS names " + strings.Join(d.names, ", ")
		if d.more > 0 {
			s += fmt.Sprintf(" and %d more", d.more)
		}
		parts = append(parts, s)
	}
	return "egress: vm " + vm.name + " " + strings.Join(parts, "; ")
}

// printable keeps a guest's name safe to show: at most 100 bytes, with
// anything but printable ASCII replaced.
func printable(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// resolvePolicy is the policy a new VM records: the request's, else the
// config's default_network_policy.
func (m *Manager) resolvePolicy(req *api.NetworkPolicy) (api.NetworkPolicy, error) {
	if req == nil {
		req = &api.NetworkPolicy{}
	}
	if req.Mode == "" && len(req.Allow) == 0 {
		req.Mode = m.cfg.DefaultNetworkPolicy
	}
	p, err := network.ParseEgressPolicy(req.Mode, req.Allow, req.AllowLAN)
	if err != nil {
		return api.NetworkPolicy{}, err
	}
	if pn, ok := m.net.(PolicyNetwork); ok && !pn.EgressEnforced() && (p.Mode != network.EgressFull || len(p.Allow) > 0) {
		return api.NetworkPolicy{}, errdefs.Unsupported("network policy %s needs banger's nftables rules, which this daemon cannot write: %v; or use --network full", p.Mode, pn.EgressRefusal())
	}
	return api.NetworkPolicy{Mode: string(p.Mode), Allow: p.Allow, AllowLAN: p.AllowLAN}, nil
}

// syncEgress applies every VM's policy to the host, if the network
// enforces policies.
func (m *Manager) syncEgress(ctx context.Context) error {
	if pn, ok := m.net.(PolicyNetwork); ok {
		return pn.SyncEgress(ctx)
	}
	return nil
}

// networkOf is the policy vm show reports.
func (m *Manager) networkOf(ctx context.Context, name string) *api.NetworkPolicy {
	p, ok, err := m.store.VMNetwork(ctx, name)
	if err != nil {
		m.log.Warn("reading a vm's network policy", "vm", name, "err", err)
		return nil
	}
	return m.shownPolicy(p, ok)
}

func (m *Manager) shownPolicy(p api.NetworkPolicy, ok bool) *api.NetworkPolicy {
	if !ok {
		p = api.NetworkPolicy{Mode: config.NetworkFull}
	}
	p.AllowLAN = p.AllowLAN || m.cfg.AllowPrivateNetworks
	return &p
}

// SetNetworkPolicy replaces a VM's egress policy; a running VM gets it at
// once, without a reboot (connections already open stay open).
func (m *Manager) SetNetworkPolicy(ctx context.Context, name string, req api.NetworkPolicy) (api.VM, error) {
	return m.UpdateVM(ctx, name, api.UpdateVMRequest{Network: &req})
}

func (m *Manager) shownPolicyString(p api.NetworkPolicy) string {
	s := m.shownPolicy(p, true)
	return network.EgressPolicy{Mode: network.EgressMode(s.Mode), Allow: s.Allow, AllowLAN: s.AllowLAN}.String()
}
