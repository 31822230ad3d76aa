package network

import "net/netip"

// TableName is banger's nftables table (family ip). banger puts every rule
// it needs in it and touches no other table, so teardown deletes exactly
// this table.
const TableName = "banger"

// FirewallSpec is what banger's table must do:
//
//   - masquerade traffic from CIDR leaving through any interface but the
//     bridge (or only through Uplink when set);
//   - in the forward hook: drop traffic from the bridge with a source
//     outside CIDR (spoofing), let guests out, let replies in, drop anything
//     else headed into the bridge — forwarding rules concern the bridge only;
//   - forward DNS to BridgeIP:53 (UDP and TCP, from guests and from the
//     host) to the daemon's unprivileged DNSPort.
type FirewallSpec struct {
	Bridge   string
	BridgeIP netip.Addr
	CIDR     netip.Prefix
	Uplink   string // "" means any interface but the bridge
	DNSPort  uint16
}

// Firewall manages banger's nftables table in the calling thread's network
// namespace.
type Firewall interface {
	// Check reports whether the table exists and, if it does, how it
	// differs from want ("" when it holds exactly want's chains and rules).
	Check(want FirewallSpec) (present bool, diff string, err error)
	// Apply replaces the table with want's in one atomic batch.
	Apply(want FirewallSpec) error
	// Remove deletes the table, reporting whether it existed.
	Remove() (bool, error)
}
