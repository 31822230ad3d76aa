package agentproto

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"banger/api/errdefs"
)

// The calls a host makes after it restores a guest from a memory snapshot
// (a resume after a long suspend, or one of several forks of one saved
// state), in this order, before the guest's network is used: set_clock,
// then reseed, then reidentify. Reseed comes before reidentify because the
// new SSH host keys and machine-id are drawn from the kernel's random pool,
// which a fork shares with its siblings until it is reseeded.

// SetClockRequest is the argument of set_clock.
type SetClockRequest struct {
	Time time.Time `json:"time"` // the host's wall clock when it sent the call
}

// ClockResult answers set_clock.
type ClockResult struct {
	Before time.Time `json:"before"` // the guest's clock just before it was set
	After  time.Time `json:"after"`  // the guest's clock just after
	// Moved is how far the guest's clock was moved: the host's time minus
	// the guest's, positive when the guest was behind. In nanoseconds.
	Moved time.Duration `json:"moved"`
}

// Entropy bounds of a reseed: 32 bytes is what the kernel's CRNG needs to
// be fully seeded; more is accepted and mixed in, up to the cap.
const (
	MinReseedBytes = 32
	MaxReseedBytes = 4096
	// ReseedBytes is what Client.Reseed sends when it draws the entropy.
	ReseedBytes = 64
)

// ReseedRequest is the argument of reseed.
type ReseedRequest struct {
	Entropy []byte `json:"entropy"` // from the host's CSPRNG, base64 on the wire
}

// ReseedResult answers reseed.
type ReseedResult struct {
	Bytes        int  `json:"bytes"`         // bytes written with RNDADDENTROPY
	CreditedBits int  `json:"credited_bits"` // entropy credited for them
	Reseeded     bool `json:"reseeded"`      // RNDRESEEDCRNG forced a CRNG reseed (kernels since 4.17)
	EntropyAvail int  `json:"entropy_avail"` // /proc/sys/kernel/random/entropy_avail afterwards
}

// ReidentifyRequest is the argument of reidentify: the guest's new
// identity. The network values are the ones the kernel command line
// carries at boot (banger.hostname, banger.ip, banger.gw, banger.dns) plus
// eth0's MAC address, which a restored guest keeps from its parent.
type ReidentifyRequest struct {
	Hostname string   `json:"hostname"`
	MAC      string   `json:"mac"`          // eth0's new address, e.g. 06:00:ac:10:00:05
	Addr     string   `json:"ip"`           // ADDR/PREFIX, IPv4 or IPv6
	Gateway  string   `json:"gw,omitempty"` // default route; inside Addr's prefix
	DNS      []string `json:"dns,omitempty"`
}

// Reidentified answers reidentify: what the guest now is. HostKeys are the
// new SSH host keys the host should pin in place of the old ones (no keys
// when the guest runs no SSH server).
type Reidentified struct {
	Hostname  string   `json:"hostname"`
	MAC       string   `json:"mac"`
	Addr      string   `json:"ip"`
	MachineID string   `json:"machine_id"`
	HostKeys  HostKeys `json:"host_keys"`
}

// Identity is a ReidentifyRequest that passed Parse.
type Identity struct {
	Hostname string
	MAC      net.HardwareAddr
	Addr     netip.Prefix
	Gateway  netip.Addr // zero when there is no default route
	DNS      []netip.Addr
}

// maxHostname is HOST_NAME_MAX; maxNameservers is resolv.conf's MAXNS.
const (
	maxHostname    = 64
	maxNameservers = 3
)

// Parse checks every value of r, so that nothing in the guest is changed
// for a request that would fail halfway. Both the host (before sending)
// and the agent (before acting) call it.
func (r ReidentifyRequest) Parse() (Identity, error) {
	var id Identity
	if err := checkHostname(r.Hostname); err != nil {
		return id, err
	}
	id.Hostname = r.Hostname
	mac, err := net.ParseMAC(r.MAC)
	if err != nil || len(mac) != 6 {
		return id, errdefs.Invalid("MAC address %q: want six hex octets like 06:00:ac:10:00:05", r.MAC)
	}
	if mac[0]&1 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return id, errdefs.Invalid("MAC address %s: a NIC needs a unicast, non-zero address (the first octet's lowest bit clear)", mac)
	}
	id.MAC = mac
	if id.Addr, err = parseHostPrefix(r.Addr); err != nil {
		return id, err
	}
	if r.Gateway != "" {
		gw, err := netip.ParseAddr(r.Gateway)
		if err != nil {
			return id, errdefs.Invalid("gateway %q is not an IP address", r.Gateway)
		}
		if gw.Zone() != "" || !id.Addr.Masked().Contains(gw) || gw == id.Addr.Addr() {
			return id, errdefs.Invalid("gateway %s must be another address inside %s", gw, id.Addr.Masked())
		}
		id.Gateway = gw
	}
	if len(r.DNS) > maxNameservers {
		return id, errdefs.Invalid("%d DNS servers: resolv.conf takes at most %d", len(r.DNS), maxNameservers)
	}
	for _, d := range r.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return id, errdefs.Invalid("DNS server %q is not a unicast IP address", d)
		}
		id.DNS = append(id.DNS, a)
	}
	return id, nil
}

// checkHostname accepts RFC 1123 names: dot-separated labels of letters,
// digits and hyphens, no label starting or ending with a hyphen.
func checkHostname(h string) error {
	if h == "" || len(h) > maxHostname {
		return errdefs.Invalid("hostname %q: want 1 to %d characters", h, maxHostname)
	}
	for _, label := range strings.Split(h, ".") {
		ok := label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for i := 0; ok && i < len(label); i++ {
			c := label[i]
			ok = c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		}
		if !ok {
			return errdefs.Invalid("hostname %q: use letters, digits and hyphens in dot-separated labels, no label starting or ending with a hyphen", h)
		}
	}
	return nil
}

// parseHostPrefix parses a host's ADDR/PREFIX: a unicast address that is
// neither the network's own address nor (IPv4) its broadcast address.
func parseHostPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, errdefs.Invalid("address %q: want ADDR/PREFIX such as 172.16.0.5/24 (%v)", s, err)
	}
	a := p.Addr()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.Zone() != "" || a.Is4In6() {
		return p, errdefs.Invalid("address %s cannot be a NIC's address", p)
	}
	if a.Is4() && p.Bits() < 31 {
		if a == p.Masked().Addr() {
			return p, errdefs.Invalid("address %s is the network address of %s; pick a host address inside it", a, p.Masked())
		}
		if a == lastAddr(p) {
			return p, errdefs.Invalid("address %s is the broadcast address of %s; pick a host address inside it", a, p.Masked())
		}
	}
	return p, nil
}

// lastAddr is the highest address of p's network.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// String is the identity in the words of the kernel command line, for logs.
func (id Identity) String() string {
	return fmt.Sprintf("hostname=%s mac=%s ip=%s gw=%s dns=%v", id.Hostname, id.MAC, id.Addr, id.Gateway, id.DNS)
}
