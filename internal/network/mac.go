package network

import (
	"fmt"
	"net"
	"net/netip"
)

// MAC returns the Ethernet address banger gives the interface that owns
// addr: 02:ba followed by the four bytes of the IPv4 address, so
// 172.16.0.2 is 02:ba:ac:10:00:02. 0x02 marks it locally administered and
// unicast, so it never clashes with a vendor address; "ba" is for banger.
// Guests get their lease's MAC, the bridge the MAC of bridge_ip: a MAC is
// unique on the bridge exactly when the addresses are.
func MAC(addr netip.Addr) net.HardwareAddr {
	a := addr.As4()
	return net.HardwareAddr{0x02, 0xba, a[0], a[1], a[2], a[3]}
}

// AddrFromMAC inverts MAC; it fails for addresses banger did not derive.
func AddrFromMAC(mac net.HardwareAddr) (netip.Addr, error) {
	if len(mac) != 6 || mac[0] != 0x02 || mac[1] != 0xba {
		return netip.Addr{}, fmt.Errorf("%s is not a banger MAC (02:ba:...)", mac)
	}
	return netip.AddrFrom4([4]byte(mac[2:6])), nil
}
