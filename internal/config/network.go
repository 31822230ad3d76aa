package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Limits of the guest network. Shorter prefixes than /16 are more than any
// host runs; longer than /29 leave too few guest addresses to be useful.
const (
	minPrefixLen   = 16
	maxPrefixLen   = 29
	maxTapPoolSize = 256
)

// dnsHint shows the expected form of default_dns.
const dnsHint = `list IPv4 addresses separated by commas, such as "1.1.1.1,8.8.8.8"`

// crossCheck relates two keys. Its error is about key; when only other
// appears in the file, the error points at other's line instead.
type crossCheck struct {
	key, other string
	check      func(c Config) error
}

var crossChecks = []crossCheck{
	{key: "bridge_ip", other: "cidr", check: checkBridgeInCIDR},
	{key: "tap_pool_size", other: "cidr", check: checkPoolFitsCIDR},
	jailerIDCheck("jailer_uid", "user id", func(c *Config) *int { return &c.JailerUID }),
	jailerIDCheck("jailer_gid", "group id", func(c *Config) *int { return &c.JailerGID }),
}

func setBridgeIP(c *Config, v any) error {
	ip, err := netip.ParseAddr(v.(string))
	if err != nil {
		return fmt.Errorf("%q is not an IP address; use an IPv4 address inside cidr, such as \"172.16.0.1\"", v)
	}
	c.BridgeIP = ip
	return nil
}

func checkBridgeIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return errors.New("not set; use an IPv4 address inside cidr, such as 172.16.0.1")
	}
	if !ip.Is4() {
		return fmt.Errorf("%s is not an IPv4 address; the guest network is IPv4 only, use an address such as 172.16.0.1", ip)
	}
	return nil
}

func setCIDR(c *Config, v any) error {
	p, err := netip.ParsePrefix(v.(string))
	if err != nil {
		return fmt.Errorf("%q is not a CIDR prefix; use one such as \"172.16.0.0/24\"", v)
	}
	c.CIDR = p
	return nil
}

func checkCIDR(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("not set; use an IPv4 prefix such as 172.16.0.0/24")
	case !p.Addr().Is4():
		return fmt.Errorf("%s is not an IPv4 prefix; the guest network is IPv4 only, use one such as 172.16.0.0/24", p)
	case p.Bits() < minPrefixLen || p.Bits() > maxPrefixLen:
		suggest := netip.PrefixFrom(p.Addr(), 24).Masked()
		return fmt.Errorf("%s has prefix length /%d; use a length from /%d to /%d, such as %s",
			p, p.Bits(), minPrefixLen, maxPrefixLen, suggest)
	case p != p.Masked():
		return fmt.Errorf("%s has host bits set; use %s", p, p.Masked())
	}
	return nil
}

func checkBridgeInCIDR(c Config) error {
	p, ip := c.CIDR, c.BridgeIP
	first := p.Addr().Next()
	switch {
	case !p.Contains(ip):
		return fmt.Errorf("%s is outside cidr %s; pick an address inside it such as %s", ip, p, first)
	case ip == p.Addr():
		return fmt.Errorf("%s is the network address of cidr %s; pick a host address such as %s", ip, p, first)
	case ip == broadcast(p):
		return fmt.Errorf("%s is the broadcast address of cidr %s; pick a host address such as %s", ip, p, first)
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	n := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], n)
	return netip.AddrFrom4(a)
}

// guestAddrs counts the addresses of p left for guests once the network,
// broadcast and bridge addresses are taken.
func guestAddrs(p netip.Prefix) int { return 1<<(32-p.Bits()) - 3 }

func checkPoolSize(n int) error {
	if n < 1 || n > maxTapPoolSize {
		return fmt.Errorf("%d is out of range; use a number from 1 to %d", n, maxTapPoolSize)
	}
	return nil
}

func checkPoolFitsCIDR(c Config) error {
	if avail := guestAddrs(c.CIDR); c.TapPoolSize > avail {
		return fmt.Errorf("%d is more than the %d guest addresses in cidr %s; use at most %d, or a larger cidr",
			c.TapPoolSize, avail, c.CIDR, avail)
	}
	return nil
}

func setDNS(c *Config, v any) error {
	s := v.(string)
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%q lists no servers; %s", s, dnsHint)
	}
	var addrs []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is not an IP address; %s", part, dnsHint)
		}
		addrs = append(addrs, a)
	}
	c.DefaultDNS = addrs
	return nil
}

func checkDNS(addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return fmt.Errorf("no servers; %s", dnsHint)
	}
	for _, a := range addrs {
		if !a.Is4() {
			return fmt.Errorf("%s is not an IPv4 address; %s", a, dnsHint)
		}
	}
	return nil
}

func formatDNS(c Config) string {
	parts := make([]string, len(c.DefaultDNS))
	for i, a := range c.DefaultDNS {
		parts[i] = a.String()
	}
	return quote(strings.Join(parts, ", "))
}
