package guestagent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// configureNetwork brings lo up and, when addr is set, iface up with addr
// and a default route through gw. It is idempotent: addresses and routes
// that exist already are fine.
func configureNetwork(iface string, addr netip.Prefix, gw netip.Addr) error {
	nl, err := dialNetlink()
	if err != nil {
		return err
	}
	defer nl.close()
	if lo, err := net.InterfaceByName("lo"); err == nil {
		if err := nl.linkUp(lo.Index); err != nil {
			return fmt.Errorf("bringing lo up: %w", err)
		}
	}
	if !addr.IsValid() {
		return nil
	}
	idx, err := waitInterface(iface, 10*time.Second)
	if err != nil {
		return err
	}
	if err := nl.linkUp(idx); err != nil {
		return fmt.Errorf("bringing %s up: %w", iface, err)
	}
	if err := nl.addAddr(idx, addr); err != nil {
		return fmt.Errorf("adding %s to %s: %w", addr, iface, err)
	}
	if gw.IsValid() {
		if err := nl.addDefaultRoute(idx, gw); err != nil {
			return fmt.Errorf("adding default route via %s: %w", gw, err)
		}
	}
	return nil
}

// waitInterface waits for a NIC whose driver may still be probing.
func waitInterface(name string, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		ifc, err := net.InterfaceByName(name)
		if err == nil {
			return ifc.Index, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("waiting for interface %s: %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// netlinkConn is a minimal NETLINK_ROUTE client built on x/sys/unix.
type netlinkConn struct {
	fd  int
	seq uint32
}

func dialNetlink() (*netlinkConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding netlink socket: %w", err)
	}
	return &netlinkConn{fd: fd}, nil
}

func (c *netlinkConn) close() { unix.Close(c.fd) }

func (c *netlinkConn) linkUp(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	return c.do(unix.RTM_NEWLINK, 0, encode(msg))
}

func (c *netlinkConn) addAddr(index int, p netip.Prefix) error {
	ip := p.Addr().AsSlice()
	msg := unix.IfAddrmsg{Family: family(p.Addr()), Prefixlen: uint8(p.Bits()), Scope: unix.RT_SCOPE_UNIVERSE, Index: uint32(index)}
	body := append(encode(msg), attr(unix.IFA_LOCAL, ip)...)
	body = append(body, attr(unix.IFA_ADDRESS, ip)...)
	return ignoreExists(c.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body))
}

func (c *netlinkConn) addDefaultRoute(index int, gw netip.Addr) error {
	msg := unix.RtMsg{Family: family(gw), Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT,
		Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(index))
	body := append(encode(msg), attr(unix.RTA_GATEWAY, gw.AsSlice())...)
	body = append(body, attr(unix.RTA_OIF, oif)...)
	return ignoreExists(c.do(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body))
}

// do sends one request and waits for the kernel's acknowledgement.
func (c *netlinkConn) do(typ, flags uint16, body []byte) error {
	c.seq++
	hdr := unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + len(body)), Type: typ,
		Flags: flags | unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: c.seq}
	msg := append(encode(hdr), body...)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sending netlink request: %w", err)
	}
	buf := make([]byte, 16<<10)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading netlink reply: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parsing netlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return syscall.Errno(-errno)
			}
			return nil
		}
	}
}

func ignoreExists(err error) error {
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// encode lays out a fixed-size kernel struct in native byte order.
func encode(v any) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.NativeEndian, v)
	return b.Bytes()
}

// attr is one rtattr: length, type, data, padding to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b := append(encode(unix.RtAttr{Len: uint16(n), Type: typ}), data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
