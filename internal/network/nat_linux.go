package network

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// HostFirewall returns the nftables Firewall of the calling thread's
// network namespace.
func HostFirewall() Firewall { return nftFirewall{} }

type nftFirewall struct{}

// chainSpec is one chain of banger's table with its rules.
type chainSpec struct {
	chain nftables.Chain
	rules []ruleSpec
}

type ruleSpec struct {
	comment string // shown by 'nft list table ip banger'
	exprs   []expr.Any
}

var policyAccept = nftables.ChainPolicyAccept

// chains builds the table for s. Expressions are written the way the
// kernel reports them back, so Check can compare them field by field.
func chains(s FirewallSpec) []chainSpec {
	br, cidr := s.Bridge, s.CIDR.Masked()
	out := ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br)
	if s.Uplink != "" {
		out = ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, s.Uplink)
	}
	dnsRules := func(fromBridge bool) []ruleSpec {
		var rs []ruleSpec
		for _, proto := range []struct {
			name string
			num  byte
		}{{"udp", unix.IPPROTO_UDP}, {"tcp", unix.IPPROTO_TCP}} {
			var e []expr.Any
			if fromBridge {
				e = append(e, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br)...)
			}
			e = append(e, ipMatch(16, expr.CmpOpEq, netip.PrefixFrom(s.BridgeIP, 32))...)
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto.num}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)},
				&expr.Immediate{Register: 1, Data: s.BridgeIP.AsSlice()},
				&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(s.DNSPort)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
					RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
			)
			rs = append(rs, ruleSpec{fmt.Sprintf("banger: %s:53 (%s) to the daemon's DNS on port %d", s.BridgeIP, proto.name, s.DNSPort), e})
		}
		return rs
	}
	return []chainSpec{
		{
			chain: nftables.Chain{Name: "postrouting", Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
			rules: []ruleSpec{{"banger: masquerade guests leaving the host", concat(
				ipMatch(12, expr.CmpOpEq, cidr), ipMatch(16, expr.CmpOpNeq, cidr), out, []expr.Any{&expr.Masq{}})}},
		},
		{
			chain: nftables.Chain{Name: "prerouting", Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
			rules: dnsRules(true),
		},
		{
			chain: nftables.Chain{Name: "output", Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
			rules: dnsRules(false),
		},
		{
			chain: nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept},
			rules: []ruleSpec{
				{"banger: drop guest traffic with a spoofed source", concat(
					ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), ipMatch(12, expr.CmpOpNeq, cidr), verdict(expr.VerdictDrop))},
				{"banger: let guests out", concat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictAccept))},
				{"banger: let replies in to guests", concat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), []expr.Any{
					&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
					&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
						Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
						Xor:  binaryutil.NativeEndian.PutUint32(0)},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
				}, verdict(expr.VerdictAccept))},
				{"banger: drop anything else into the guest network", concat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictDrop))},
			},
		},
	}
}

// ifname matches the input or output interface name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, 16)
	copy(b, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: b}}
}

// ipMatch matches the IPv4 source (offset 12) or destination (16) against p.
func ipMatch(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	cmp := &expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()}
	if p.Bits() == 32 {
		return []expr.Any{load, cmp}
	}
	mask := netipMask(p.Bits())
	return []expr.Any{load, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)}, cmp}
}

func netipMask(bits int) []byte {
	m := uint32(0xffffffff) << (32 - bits)
	return binaryutil.BigEndian.PutUint32(m)
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
}

// find returns banger's table, or nil.
func (nftFirewall) find(c *nftables.Conn) (*nftables.Table, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == TableName {
			return t, nil
		}
	}
	return nil, nil
}

func (f nftFirewall) Check(want FirewallSpec) (bool, string, error) {
	c, err := nftables.New()
	if err != nil {
		return false, "", err
	}
	t, err := f.find(c)
	if err != nil || t == nil {
		return false, "", err
	}
	got, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return true, "", fmt.Errorf("listing chains of table ip %s: %w", TableName, err)
	}
	have := map[string]*nftables.Chain{}
	for _, ch := range got {
		if ch.Table.Name == TableName {
			have[ch.Name] = ch
		}
	}
	specs := chains(want)
	if len(have) != len(specs) {
		return true, fmt.Sprintf("table has %d chains, want %d", len(have), len(specs)), nil
	}
	for _, cs := range specs {
		ch := have[cs.chain.Name]
		if diff := chainDiff(cs.chain, ch); diff != "" {
			return true, diff, nil
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return true, "", fmt.Errorf("listing rules of chain %s: %w", ch.Name, err)
		}
		if diff := rulesDiff(cs, rules); diff != "" {
			return true, diff, nil
		}
	}
	return true, "", nil
}

func chainDiff(want nftables.Chain, got *nftables.Chain) string {
	switch {
	case got == nil:
		return "chain " + want.Name + " is missing"
	case got.Type != want.Type || !eqPtr(got.Hooknum, want.Hooknum) || !eqPtr(got.Priority, want.Priority):
		return "chain " + want.Name + " has another type, hook or priority"
	case want.Policy != nil && !eqPtr(got.Policy, want.Policy):
		return "chain " + want.Name + " has another policy"
	}
	return ""
}

func rulesDiff(cs chainSpec, got []*nftables.Rule) string {
	if len(got) != len(cs.rules) {
		return fmt.Sprintf("chain %s has %d rules, want %d", cs.chain.Name, len(got), len(cs.rules))
	}
	for i, r := range cs.rules {
		if !reflect.DeepEqual(got[i].Exprs, r.exprs) {
			return fmt.Sprintf("chain %s rule %d (%s) differs", cs.chain.Name, i+1, r.comment)
		}
	}
	return ""
}

func eqPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func (f nftFirewall) Apply(want FirewallSpec) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	old, err := f.find(c)
	if err != nil {
		return err
	}
	t := table()
	if old != nil {
		c.DelTable(t) // same batch: the table is replaced atomically
	}
	c.AddTable(t)
	for _, cs := range chains(want) {
		ch := cs.chain
		ch.Table = t
		added := c.AddChain(&ch)
		for _, r := range cs.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: added, Exprs: r.exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("writing nftables table ip %s: %w", TableName, err)
	}
	return nil
}

// Remove deletes banger's NAT table and, with it, the daemon's egress
// tables (EgressTable): teardown leaves no banger rule behind.
func (f nftFirewall) Remove() (bool, error) {
	if _, err := HostEgress().Remove(); err != nil {
		return false, err
	}
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	t, err := f.find(c)
	if err != nil || t == nil {
		return false, err
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return true, fmt.Errorf("deleting nftables table ip %s: %w", TableName, err)
	}
	return true, nil
}
