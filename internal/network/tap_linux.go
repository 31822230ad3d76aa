package network

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// AddTap creates a persistent TAP (TUNSETPERSIST) owned by uid and gid
// (TUNSETOWNER, TUNSETGROUP), so that user can open it without privilege.
// IFF_TUN_EXCL makes creation fail rather than attach to an existing device.
// The flags set here do not bind the VMM: each opener sets its own
// (Firecracker and QEMU ask for IFF_NO_PI|IFF_VNET_HDR, single queue).
func (nlLinks) AddTap(name string, uid, gid int) error {
	t := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_TUN_EXCL,
		Owner:     uint32(uid),
		Group:     uint32(gid),
	}
	if err := netlink.LinkAdd(t); err != nil {
		return fmt.Errorf("creating tap %s: %w", name, err)
	}
	return nil
}

func tapInfo(l netlink.Link) *TapInfo {
	t, ok := l.(*netlink.Tuntap)
	if !ok {
		return nil
	}
	return &TapInfo{
		TAP:        t.Mode == netlink.TUNTAP_MODE_TAP,
		Persistent: !t.NonPersist,
		Owner:      int(t.Owner),
		Group:      int(t.Group),
	}
}
