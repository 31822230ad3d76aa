package network

import (
	"errors"
	"net"
	"net/netip"
)

// ErrLinkNotFound is returned by Links.Link for a missing interface.
var ErrLinkNotFound = errors.New("no such network interface")

// Aliases (IFLA_IFALIAS) mark the interfaces banger created, so teardown
// removes those and never an interface that merely has a matching name.
const (
	bridgeAlias = "banger: guest bridge"
	tapAlias    = "banger: guest tap"
)

// LinkInfo is what banger reads about a network interface.
type LinkInfo struct {
	Name    string
	Kind    string // "bridge", "tun", "veth", "device", ...
	Alias   string
	Master  string // bridge the interface is attached to, "" if none
	Up      bool   // administratively up
	Carrier bool   // lower layer up; for a TAP: a process (the VMM) has it open
	MAC     net.HardwareAddr
	Addrs   []netip.Prefix // IPv4 addresses
	Tap     *TapInfo       // set for tun/tap devices
}

// TapInfo describes a tun/tap device.
type TapInfo struct {
	TAP        bool // tap (Ethernet) rather than tun (IP) mode
	Persistent bool
	// Owner and Group may open the device without privilege. Netlink
	// reports "no owner" as 0, the same as root.
	Owner, Group int
}

// Links reads and changes network interfaces (netlink on the real host).
// Every method acts on the calling thread's network namespace.
type Links interface {
	Link(name string) (LinkInfo, error) // ErrLinkNotFound when missing
	Links() ([]LinkInfo, error)
	AddBridge(name string, mac net.HardwareAddr) error
	// AddTap creates a persistent TAP owned by uid and gid.
	AddTap(name string, uid, gid int) error
	Delete(name string) error
	SetAlias(name, alias string) error
	SetMaster(name, master string) error
	SetUp(name string) error
	AddAddr(name string, p netip.Prefix) error
	DelAddr(name string, p netip.Prefix) error
}
