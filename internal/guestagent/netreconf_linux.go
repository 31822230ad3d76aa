package guestagent

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// guestNIC is the interface the host's network reaches, configured from
// banger.ip= at boot and by reidentify after a restore.
const guestNIC = "eth0"

// takeDown sets iface down, which also drops the kernel's routes through
// it, so nothing leaves the guest with its old identity.
func takeDown(iface string) error {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("finding %s: %w", iface, err)
	}
	nl, err := dialNetlink()
	if err != nil {
		return err
	}
	defer nl.close()
	if err := nl.linkDown(ifc.Index); err != nil {
		return fmt.Errorf("taking %s down: %w", iface, err)
	}
	return nil
}

// readdress gives iface, which takeDown has taken down, a new MAC address
// and addr in place of every address it had, brings it up and routes the
// default through gw (when valid). The neighbours hear of the new address
// at once: arp_notify and ndisc_notify make the kernel announce it on up.
func readdress(iface string, mac net.HardwareAddr, addr netip.Prefix, gw netip.Addr) error {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("finding %s: %w", iface, err)
	}
	nl, err := dialNetlink()
	if err != nil {
		return err
	}
	defer nl.close()
	if err := nl.setMAC(ifc.Index, mac); err != nil {
		return fmt.Errorf("setting %s's MAC address to %s: %w", iface, mac, err)
	}
	old, err := ifc.Addrs()
	if err != nil {
		return fmt.Errorf("listing %s's addresses: %w", iface, err)
	}
	for _, a := range old {
		p, ok := prefixOf(a)
		if !ok || p.Addr().IsLinkLocalUnicast() || p == addr {
			continue
		}
		if err := nl.delAddr(ifc.Index, p); err != nil {
			return fmt.Errorf("removing %s from %s: %w", p, iface, err)
		}
	}
	if err := nl.addAddr(ifc.Index, addr); err != nil {
		return fmt.Errorf("adding %s to %s: %w", addr, iface, err)
	}
	announce(iface)
	if err := nl.linkUp(ifc.Index); err != nil {
		return fmt.Errorf("bringing %s up: %w", iface, err)
	}
	if gw.IsValid() {
		if err := nl.replaceDefaultRoute(ifc.Index, gw); err != nil {
			return fmt.Errorf("adding default route via %s: %w", gw, err)
		}
	}
	return nil
}

func prefixOf(a net.Addr) (netip.Prefix, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

// announce asks the kernel for a gratuitous ARP (and unsolicited neighbour
// advertisements) when iface comes up, so the bridge and the host forget
// the old MAC address of this IP, or the previous owner of it. Best
// effort: without it neighbours find out when their entries expire.
func announce(iface string) {
	for _, p := range []string{"ipv4/conf/" + iface + "/arp_notify", "ipv6/conf/" + iface + "/ndisc_notify"} {
		os.WriteFile(filepath.Join("/proc/sys/net", p), []byte("1\n"), 0o644)
	}
}

func (c *netlinkConn) linkDown(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Change: unix.IFF_UP}
	return c.do(unix.RTM_NEWLINK, 0, encode(msg))
}

func (c *netlinkConn) setMAC(index int, mac net.HardwareAddr) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index)}
	return c.do(unix.RTM_NEWLINK, 0, append(encode(msg), attr(unix.IFLA_ADDRESS, mac)...))
}

func (c *netlinkConn) delAddr(index int, p netip.Prefix) error {
	ip := p.Addr().AsSlice()
	msg := unix.IfAddrmsg{Family: family(p.Addr()), Prefixlen: uint8(p.Bits()), Index: uint32(index)}
	body := append(encode(msg), attr(unix.IFA_LOCAL, ip)...)
	body = append(body, attr(unix.IFA_ADDRESS, ip)...)
	return c.do(unix.RTM_DELADDR, 0, body)
}

// replaceDefaultRoute sets the default route of gw's family to go via gw
// on index, whatever default route there was.
func (c *netlinkConn) replaceDefaultRoute(index int, gw netip.Addr) error {
	msg := unix.RtMsg{Family: family(gw), Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT,
		Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(index))
	body := append(encode(msg), attr(unix.RTA_GATEWAY, gw.AsSlice())...)
	body = append(body, attr(unix.RTA_OIF, oif)...)
	return c.do(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, body)
}
