package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostLinks returns Links over netlink, acting on the calling thread's
// network namespace.
func HostLinks() Links { return nlLinks{} }

type nlLinks struct{}

func (nlLinks) Link(name string) (LinkInfo, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return LinkInfo{}, fmt.Errorf("%s: %w", name, ErrLinkNotFound)
		}
		return LinkInfo{}, fmt.Errorf("reading interface %s: %w", name, err)
	}
	return linkInfo(l)
}

func (nlLinks) Links() ([]LinkInfo, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	out := make([]LinkInfo, 0, len(ls))
	for _, l := range ls {
		info, err := linkInfo(l)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func linkInfo(l netlink.Link) (LinkInfo, error) {
	a := l.Attrs()
	info := LinkInfo{
		Name:    a.Name,
		Kind:    l.Type(),
		Alias:   a.Alias,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		MAC:     a.HardwareAddr,
		Tap:     tapInfo(l),
	}
	if a.MasterIndex != 0 {
		m, err := netlink.LinkByIndex(a.MasterIndex)
		if err != nil {
			return LinkInfo{}, fmt.Errorf("reading the master of %s: %w", a.Name, err)
		}
		info.Master = m.Attrs().Name
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return LinkInfo{}, fmt.Errorf("listing addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP.To4()); ok {
			ones, _ := ad.Mask.Size()
			info.Addrs = append(info.Addrs, netip.PrefixFrom(ip, ones))
		}
	}
	return info, nil
}

func (nlLinks) AddBridge(name string, mac net.HardwareAddr) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("creating bridge %s: %w", name, err)
	}
	return nil
}

func (n nlLinks) Delete(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding %s to delete: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

func (nlLinks) SetAlias(name, alias string) error {
	return onLink(name, "setting the alias of", func(l netlink.Link) error { return netlink.LinkSetAlias(l, alias) })
}

func (nlLinks) SetMaster(name, master string) error {
	m, err := netlink.LinkByName(master)
	if err != nil {
		return fmt.Errorf("finding bridge %s: %w", master, err)
	}
	return onLink(name, "attaching to "+master, func(l netlink.Link) error { return netlink.LinkSetMasterByIndex(l, m.Attrs().Index) })
}

func (nlLinks) SetUp(name string) error {
	return onLink(name, "bringing up", netlink.LinkSetUp)
}

func (nlLinks) AddAddr(name string, p netip.Prefix) error {
	return onLink(name, "adding "+p.String()+" to", func(l netlink.Link) error { return netlink.AddrAdd(l, nlAddr(p)) })
}

func (nlLinks) DelAddr(name string, p netip.Prefix) error {
	return onLink(name, "removing "+p.String()+" from", func(l netlink.Link) error { return netlink.AddrDel(l, nlAddr(p)) })
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

func onLink(name, doing string, fn func(netlink.Link) error) error {
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = fn(l)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", doing, name, err)
	}
	return nil
}
