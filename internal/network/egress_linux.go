package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// EgressTable is the name of banger's egress tables: "inet banger_egress"
// (per-VM policy: forward, input and DNS redirection) and
// "bridge banger_egress" (traffic between VMs on the bridge).
const EgressTable = "banger_egress"

// HostEgress returns the nftables Egress of the calling thread's network
// namespace.
func HostEgress() Egress { return nftEgress{} }

type nftEgress struct{}

func egressTable() *nftables.Table {
	return &nftables.Table{Name: EgressTable, Family: nftables.TableFamilyINet}
}

func egressBridgeTable() *nftables.Table {
	return &nftables.Table{Name: EgressTable, Family: nftables.TableFamilyBridge}
}

// vmKey names a VM's chain, sets and counter: vm_172_16_0_2.
func vmKey(a netip.Addr) string { return "vm_" + strings.ReplaceAll(a.String(), ".", "_") }

func vmKeyAddr(name string) (netip.Addr, bool) {
	s, ok := strings.CutPrefix(name, "vm_")
	if !ok {
		return netip.Addr{}, false
	}
	s, _ = strings.CutSuffix(s, "_denied")
	a, err := netip.ParseAddr(strings.ReplaceAll(s, "_", "."))
	return a, err == nil && a.Is4()
}

const counterObjType = 1 // NFT_OBJECT_COUNTER

func baseDigest(s EgressSpec) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("v1 %s %s %s %d", s.Bridge, s.BridgeIP, s.CIDR.Masked(), s.DNSPort)))
	return hex.EncodeToString(h[:])[:16]
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func ruleComment(r *nftables.Rule) string {
	c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return c
}

var (
	nfproto4 = []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}}}
	nfproto6 = []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}}}
	ctReply  = []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
)

func lookup(set *nftables.Set, offset uint32, l uint32) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: l},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
	}
}

func l4port(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func counted(name string) []expr.Any {
	return []expr.Any{&expr.Objref{Type: counterObjType, Name: name}}
}

// prefixElements are the interval-set elements of ps.
func prefixElements(ps []netip.Prefix) []nftables.SetElement {
	var out []nftables.SetElement
	for _, p := range ps {
		p = p.Masked()
		start := p.Addr()
		end := prefixEnd(p).Next()
		out = append(out, nftables.SetElement{Key: start.AsSlice()})
		if end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// prefixEnd is the last address of p, IPv4 or IPv6.
func prefixEnd(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func addrElements(as []netip.Addr) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(as))
	for _, a := range as {
		out = append(out, nftables.SetElement{Key: a.AsSlice()})
	}
	return out
}

// egressState is what Sync found in the kernel.
type egressState struct {
	table   *nftables.Table
	base    string                // digest on the forward chain's rule
	vms     map[netip.Addr]string // VM chains by address, with their digest
	lanOK   []netip.Addr
	dnsRedi []netip.Addr
	sets    map[string]bool
	taps    []tapBinding // the bridge table's anti-spoofing set
}

// tapBinding is one element of the bridge table's tap_addr set: the only
// IPv4 source allowed in from a TAP.
type tapBinding struct {
	tap  string
	addr netip.Addr
}

func compareBinding(a, b tapBinding) int {
	if c := strings.Compare(a.tap, b.tap); c != 0 {
		return c
	}
	return a.addr.Compare(b.addr)
}

// tapBindings are the bindings vms ask for, sorted.
func tapBindings(vms []VMEgress) []tapBinding {
	var out []tapBinding
	for _, v := range vms {
		if v.Tap != "" {
			out = append(out, tapBinding{v.Tap, v.Addr})
		}
	}
	slices.SortFunc(out, compareBinding)
	return out
}

// bindingKey is the concatenated set key: the interface name padded to
// IFNAMSIZ, then the IPv4 address.
func bindingKey(b tapBinding) []byte {
	k := make([]byte, unix.IFNAMSIZ, unix.IFNAMSIZ+4)
	copy(k, b.tap)
	return append(k, b.addr.AsSlice()...)
}

func readBindings(c *nftables.Conn) ([]tapBinding, error) {
	set, err := c.GetSetByName(egressBridgeTable(), "tap_addr")
	if err != nil {
		return nil, nil // no bridge table (or an older one): rebuilt
	}
	els, err := c.GetSetElements(set)
	if err != nil {
		return nil, fmt.Errorf("reading the taps' addresses: %w", err)
	}
	var out []tapBinding
	for _, e := range els {
		if len(e.Key) != unix.IFNAMSIZ+4 {
			continue
		}
		a, _ := netip.AddrFromSlice(e.Key[unix.IFNAMSIZ:])
		out = append(out, tapBinding{strings.TrimRight(string(e.Key[:unix.IFNAMSIZ]), "\x00"), a})
	}
	slices.SortFunc(out, compareBinding)
	return out, nil
}

func (nftEgress) read(c *nftables.Conn) (*egressState, error) {
	t, err := c.ListTableOfFamily(EgressTable, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) || (err != nil && strings.Contains(err.Error(), "no such file")) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading nftables table inet %s: %w", EgressTable, err)
	}
	if t == nil {
		return nil, nil
	}
	st := &egressState{table: t, vms: map[netip.Addr]string{}, sets: map[string]bool{}}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		st.sets[s.Name] = true
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	for _, ch := range chains {
		if ch.Table.Name != EgressTable {
			continue
		}
		first := func() (string, error) {
			rules, err := c.GetRules(t, ch)
			if err != nil || len(rules) == 0 {
				return "", err
			}
			return ruleComment(rules[0]), nil
		}
		if ch.Name == "forward" {
			if st.base, err = first(); err != nil {
				return nil, err
			}
			continue
		}
		if a, ok := vmKeyAddr(ch.Name); ok {
			if st.vms[a], err = first(); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range []struct {
		name string
		into *[]netip.Addr
	}{{"lan_ok", &st.lanOK}, {"dns_redirect", &st.dnsRedi}} {
		set, err := c.GetSetByName(t, s.name)
		if err != nil {
			return st, nil // base broken: the digest check rebuilds
		}
		els, err := c.GetSetElements(set)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				*s.into = append(*s.into, a)
			}
		}
		slices.SortFunc(*s.into, netip.Addr.Compare)
	}
	if st.taps, err = readBindings(c); err != nil {
		return nil, err
	}
	return st, nil
}

func vmComment(v VMEgress) string {
	return fmt.Sprintf("banger: policy of %s (%s) [%s]", v.Addr, v.Policy.Mode, v.Policy.digest(v.Addr)) // the digest stands for the allow list: a comment holds at most 256 bytes
}

func baseComment(s EgressSpec) string {
	return fmt.Sprintf("banger: guests' egress policy on %s [%s]", s.Bridge, baseDigest(s))
}

func (e nftEgress) Sync(spec EgressSpec, vms []VMEgress) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	st, err := e.read(c)
	if err != nil {
		return err
	}
	vms = slices.Clone(vms)
	slices.SortFunc(vms, func(a, b VMEgress) int { return a.Addr.Compare(b.Addr) })
	var lanOK, redirect []netip.Addr
	for _, v := range vms {
		if v.Policy.AllowLAN {
			lanOK = append(lanOK, v.Addr)
		}
		if v.Policy.Mode == EgressAllow {
			redirect = append(redirect, v.Addr)
		}
	}
	if st == nil || st.base != baseComment(spec) {
		if st != nil {
			c.DelTable(egressTable())
		}
		if err := e.delBridgeTable(c); err != nil {
			return err
		}
		if err := e.build(c, spec, vms, lanOK, redirect, nil); err != nil {
			return err
		}
		return flushEgress(c)
	}
	same := slices.Equal(st.lanOK, lanOK) && slices.Equal(st.dnsRedi, redirect) && len(st.vms) == len(vms) &&
		slices.Equal(st.taps, tapBindings(vms))
	keep := map[netip.Addr]bool{}
	for _, v := range vms {
		if st.vms[v.Addr] == vmComment(v) {
			keep[v.Addr] = true
		} else {
			same = false
		}
	}
	if same {
		return nil
	}
	// Rebuild the dispatch chains and the sets, drop stale VM chains and
	// rebuild changed ones, all in one batch: the kernel swaps them
	// atomically. VMs whose chain is right keep it (and what they learned).
	t := egressTable()
	for _, name := range []string{"egress", "guard"} {
		c.FlushChain(&nftables.Chain{Table: t, Name: name})
	}
	for a := range st.vms {
		if !keep[a] {
			delVM(c, t, a, st.sets)
		}
	}
	if err := e.delBridgeTable(c); err != nil {
		return err
	}
	if err := e.build(c, spec, vms, lanOK, redirect, keep); err != nil {
		return err
	}
	return flushEgress(c)
}

func flushEgress(c *nftables.Conn) error {
	if err := c.Flush(); err != nil {
		return fmt.Errorf("writing nftables table inet %s: %w", EgressTable, err)
	}
	return nil
}

func (nftEgress) delBridgeTable(c *nftables.Conn) error {
	t, err := c.ListTableOfFamily(EgressTable, nftables.TableFamilyBridge)
	if err == nil && t != nil {
		c.DelTable(egressBridgeTable())
	}
	return nil
}

func delVM(c *nftables.Conn, t *nftables.Table, a netip.Addr, sets map[string]bool) {
	k := vmKey(a)
	c.FlushChain(&nftables.Chain{Table: t, Name: k})
	c.DelChain(&nftables.Chain{Table: t, Name: k})
	for _, s := range []string{k + "_cidr", k + "_dns"} {
		if sets[s] {
			c.DelSet(&nftables.Set{Table: t, Name: s})
		}
	}
	c.DeleteObject(&nftables.CounterObj{Table: t, Name: k + "_denied"})
}

// build adds what is missing: with keep == nil the whole table (it was
// just deleted), else the dispatch rules, the sets' contents, and the
// chains of VMs not in keep. The bridge table is always rebuilt (it holds
// no state).
func (e nftEgress) build(c *nftables.Conn, spec EgressSpec, vms []VMEgress, lanOK, redirect []netip.Addr, keep map[netip.Addr]bool) error {
	t := egressTable()
	full := keep == nil
	if full {
		c.AddTable(t)
	}
	set := func(name string, key nftables.SetDatatype, interval, timeout bool, els []nftables.SetElement) (*nftables.Set, error) {
		s := &nftables.Set{Table: t, Name: name, KeyType: key, Interval: interval, HasTimeout: timeout}
		if !full {
			s, err := c.GetSetByName(t, name)
			if err != nil || interval {
				return s, err // the constant lists stay as they are
			}
			c.FlushSet(s)
			return s, c.SetAddElements(s, els)
		}
		return s, c.AddSet(s, els)
	}
	deny, err := set("always_deny", nftables.TypeIPAddr, true, false, prefixElements(AlwaysDenied))
	if err != nil {
		return err
	}
	deny6, err := set("always_deny6", nftables.TypeIP6Addr, true, false, prefixElements(AlwaysDenied6))
	if err != nil {
		return err
	}
	lan, err := set("lan_ok", nftables.TypeIPAddr, false, false, addrElements(lanOK))
	if err != nil {
		return err
	}
	redi, err := set("dns_redirect", nftables.TypeIPAddr, false, false, addrElements(redirect))
	if err != nil {
		return err
	}
	br := spec.Bridge
	add := func(ch *nftables.Chain, cmt string, parts ...[]expr.Any) {
		r := &nftables.Rule{Table: t, Chain: ch, Exprs: concat(parts...)}
		if cmt != "" {
			r.UserData = comment(cmt)
		}
		c.AddRule(r)
	}
	chain := func(name string, base *nftables.Chain) *nftables.Chain {
		if base != nil {
			base.Table, base.Name = t, name
			if full {
				return c.AddChain(base)
			}
			return base
		}
		ch := &nftables.Chain{Table: t, Name: name}
		if full {
			return c.AddChain(ch)
		}
		return ch
	}
	accept := nftables.ChainPolicyAccept
	egress := chain("egress", nil)
	guard := chain("guard", nil)
	if full {
		fwd := chain("forward", &nftables.Chain{Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward,
			Priority: nftables.ChainPriorityRef(-5), Policy: &accept})
		add(fwd, baseComment(spec), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "egress"}})
		in := chain("input", &nftables.Chain{Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput,
			Priority: nftables.ChainPriorityRef(-5), Policy: &accept})
		add(in, "banger: guests reach the host only for DNS and replies", ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "guard"}})
		pre := chain("prerouting", &nftables.Chain{Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting,
			Priority: nftables.ChainPriorityRef(-105), Policy: &accept})
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			add(pre, "banger: allow-mode guests' DNS goes to banger's DNS server",
				ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), nfproto4, lookup(redi, 12, 4),
				ipMatch(16, expr.CmpOpNeq, netip.PrefixFrom(spec.BridgeIP, 32)), l4port(proto, 53), []expr.Any{
					&expr.Immediate{Register: 1, Data: spec.BridgeIP.AsSlice()},
					&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(spec.DNSPort)},
					&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
						RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
				})
		}
	}
	// The VMs' chains first: the dispatch rules jump to them.
	for _, v := range vms {
		if keep[v.Addr] {
			continue
		}
		if err := e.addVM(c, t, spec, v, deny, deny6); err != nil {
			return err
		}
	}
	// Dispatch: each VM's traffic to its own chain. A source that is no
	// VM's is dropped: a guest that takes an address nobody leased must
	// not escape its policy.
	for _, v := range vms {
		k := vmKey(v.Addr)
		add(egress, "", nfproto4, ipMatch(12, expr.CmpOpEq, netip.PrefixFrom(v.Addr, 32)), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: k}})
	}
	add(egress, "banger: nothing from sources that are no VM's", verdict(expr.VerdictDrop))

	add(guard, "banger: replies to the host's own connections", ctReply, verdict(expr.VerdictAccept))
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		add(guard, "banger: the bridge's DNS", nfproto4, ipMatch(16, expr.CmpOpEq, netip.PrefixFrom(spec.BridgeIP, 32)), l4port(proto, spec.DNSPort), verdict(expr.VerdictAccept))
	}
	add(guard, "banger: VMs allowed the LAN reach the host", nfproto4, lookup(lan, 12, 4), verdict(expr.VerdictAccept))
	for _, v := range vms {
		add(guard, "", nfproto4, ipMatch(12, expr.CmpOpEq, netip.PrefixFrom(v.Addr, 32)), counted(vmKey(v.Addr)+"_denied"), verdict(expr.VerdictDrop))
	}
	add(guard, "banger: nothing else from guests reaches the host", verdict(expr.VerdictDrop))

	return e.buildBridge(c, spec, lanOK, tapBindings(vms))
}

func (nftEgress) addVM(c *nftables.Conn, t *nftables.Table, spec EgressSpec, v VMEgress, deny, deny6 *nftables.Set) error {
	k := vmKey(v.Addr)
	c.AddObj(&nftables.CounterObj{Table: t, Name: k + "_denied"})
	ch := c.AddChain(&nftables.Chain{Table: t, Name: k})
	var rules [][]expr.Any
	if !v.Policy.AllowLAN {
		rules = append(rules,
			concat(nfproto4, ipMatch(16, expr.CmpOpNeq, spec.CIDR.Masked()), lookup(deny, 16, 4), counted(k+"_denied"), verdict(expr.VerdictDrop)),
			concat(nfproto6, lookup(deny6, 24, 16), counted(k+"_denied"), verdict(expr.VerdictDrop)))
	}
	switch v.Policy.Mode {
	case EgressNone:
		rules = append(rules, concat(counted(k+"_denied"), verdict(expr.VerdictDrop)))
	case EgressAllow:
		cidrs := &nftables.Set{Table: t, Name: k + "_cidr", KeyType: nftables.TypeIPAddr, Interval: true}
		if err := c.AddSet(cidrs, prefixElements(v.Policy.Prefixes())); err != nil {
			return err
		}
		learned := &nftables.Set{Table: t, Name: k + "_dns", KeyType: nftables.TypeIPAddr, HasTimeout: true}
		if err := c.AddSet(learned, nil); err != nil {
			return err
		}
		rules = append(rules,
			concat(nfproto4, lookup(cidrs, 16, 4), verdict(expr.VerdictAccept)),
			concat(nfproto4, lookup(learned, 16, 4), verdict(expr.VerdictAccept)),
			concat(counted(k+"_denied"), verdict(expr.VerdictDrop)))
	default:
		rules = append(rules, verdict(expr.VerdictAccept))
	}
	for i, r := range rules {
		rule := &nftables.Rule{Table: t, Chain: ch, Exprs: r}
		if i == 0 {
			rule.UserData = comment(vmComment(v))
		}
		c.AddRule(rule)
	}
	return nil
}

// buildBridge adds the bridge-family table: IPv4 and ARP from a TAP must
// carry the address of the VM holding it (prerouting, before anything
// routes or bridges it), and IP from a TAP to another port of the bridge
// (VM to VM) is dropped unless the sender may reach the LAN.
func (nftEgress) buildBridge(c *nftables.Conn, spec EgressSpec, lanOK []netip.Addr, taps []tapBinding) error {
	t := egressBridgeTable()
	c.AddTable(t)
	lan := &nftables.Set{Table: t, Name: "lan_ok", KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(lan, addrElements(lanOK)); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Table: t, Name: "forward", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-5), Policy: &accept})
	// From one of banger's TAPs (by name prefix: 'meta ibrname' is not
	// available in every kernel's bridge family).
	pre := tapPrefix(spec.Bridge)
	onBridge := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(pre)}}
	proto := func(p uint16) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)}}
	}
	if err := addAntiSpoof(c, t, onBridge, proto, taps); err != nil {
		return err
	}
	for _, r := range []struct {
		cmt   string
		exprs []expr.Any
	}{
		{"banger: VMs allowed the LAN reach other VMs", concat(onBridge, proto(unix.ETH_P_IP), lookup(lan, 12, 4), verdict(expr.VerdictAccept))},
		{"banger: no IP between VMs", concat(onBridge, proto(unix.ETH_P_IP), verdict(expr.VerdictDrop))},
		{"banger: no IPv6 between VMs", concat(onBridge, proto(unix.ETH_P_IPV6), verdict(expr.VerdictDrop))},
	} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs, UserData: comment(r.cmt)})
	}
	return nil
}

// addAntiSpoof adds the bridge table's prerouting chain: from one of
// banger's TAPs, IPv4 whose source and ARP whose sender address is not
// the one bound to that TAP (tap_addr) is dropped. An ARP probe (sender
// 0.0.0.0) claims no address and passes.
func addAntiSpoof(c *nftables.Conn, t *nftables.Table, onBridge []expr.Any, proto func(uint16) []expr.Any, taps []tapBinding) error {
	set := &nftables.Set{Table: t, Name: "tap_addr", KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr), Concatenation: true}
	els := make([]nftables.SetElement, 0, len(taps))
	for _, b := range taps {
		els = append(els, nftables.SetElement{Key: bindingKey(b)})
	}
	if err := c.AddSet(set, els); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Table: t, Name: "prerouting", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &accept})
	// The key is built in 32-bit registers: the name fills 8..11, the
	// address 12.
	notBound := func(offset uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 8},
			&expr.Payload{DestRegister: 12, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Lookup{SourceRegister: 8, SetName: set.Name, SetID: set.ID, Invert: true},
		}
	}
	arpSender := uint32(14) // after hardware and protocol types, sizes, opcode and sender MAC
	probe := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: arpSender, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
	for _, r := range []struct {
		cmt   string
		exprs []expr.Any
	}{
		{"banger: IPv4 from a tap carries the address of the VM holding it", concat(onBridge, proto(unix.ETH_P_IP), notBound(12), verdict(expr.VerdictDrop))},
		{"banger: ARP probes claim no address", concat(onBridge, proto(unix.ETH_P_ARP), probe, verdict(expr.VerdictAccept))},
		{"banger: ARP from a tap carries the address of the VM holding it", concat(onBridge, proto(unix.ETH_P_ARP), notBound(arpSender), verdict(expr.VerdictDrop))},
	} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs, UserData: comment(r.cmt)})
	}
	return nil
}

func (nftEgress) Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	set, err := c.GetSetByName(egressTable(), vmKey(vm)+"_dns")
	if err != nil {
		return nil // not an allow-mode VM (or no table): nothing to learn
	}
	have, err := c.GetSetElements(set)
	if err != nil {
		return fmt.Errorf("reading the addresses %s learned: %w", vm, err)
	}
	var old, add []nftables.SetElement
	for _, ip := range ips {
		if !ip.Is4() {
			continue
		}
		if slices.ContainsFunc(have, func(e nftables.SetElement) bool { return string(e.Key) == string(ip.AsSlice()) }) {
			old = append(old, nftables.SetElement{Key: ip.AsSlice()})
		}
		add = append(add, nftables.SetElement{Key: ip.AsSlice(), Timeout: clampTTL(ttl)})
	}
	if len(add) == 0 {
		return nil
	}
	// Delete and add again in one batch: adding an element that exists
	// would keep its old timeout.
	if len(old) > 0 {
		if err := c.SetDeleteElements(set, old); err != nil {
			return err
		}
	}
	if err := c.SetAddElements(set, add); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("letting %s reach %v: %w", vm, ips, err)
	}
	return nil
}

func (nftEgress) Denied() ([]Denial, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	objs, err := c.ResetObjects(egressTable())
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the deny counters: %w", err)
	}
	var out []Denial
	for _, o := range objs {
		co, ok := o.(*nftables.CounterObj)
		if !ok || co.Packets == 0 || !strings.HasSuffix(co.Name, "_denied") {
			continue
		}
		if a, ok := vmKeyAddr(co.Name); ok {
			out = append(out, Denial{Addr: a, Packets: co.Packets})
		}
	}
	slices.SortFunc(out, func(a, b Denial) int { return a.Addr.Compare(b.Addr) })
	return out, nil
}

func (e nftEgress) Remove() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	st, err := e.read(c)
	if err != nil {
		return false, err
	}
	if st != nil {
		c.DelTable(egressTable())
	}
	if t, err := c.ListTableOfFamily(EgressTable, nftables.TableFamilyBridge); err == nil && t != nil {
		c.DelTable(egressBridgeTable())
		st = &egressState{}
	}
	if st == nil {
		return false, nil
	}
	if err := c.Flush(); err != nil {
		return true, fmt.Errorf("deleting nftables table %s: %w", EgressTable, err)
	}
	return true, nil
}
