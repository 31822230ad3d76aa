package guestagent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// writeResolvConf points the resolver at dns. A symlink (systemd-resolved's
// stub) is replaced by a file: in PID 1 mode nothing else manages it.
func writeResolvConf(root string, dns []netip.Addr) error {
	if len(dns) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Written by banger-vsock-agent from banger.dns.\n")
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	return replaceEtcFile(filepath.Join(root, "etc", "resolv.conf"), b.String())
}

// writeHosts maps localhost and this guest's name.
func writeHosts(root, hostname string, addr netip.Addr) error {
	var b strings.Builder
	b.WriteString("# Written by banger-vsock-agent.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if hostname != "" {
		ip := "127.0.1.1"
		if addr.IsValid() {
			ip = addr.String()
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return replaceEtcFile(filepath.Join(root, "etc", "hosts"), b.String())
}

func writeHostname(root, hostname string) error {
	if hostname == "" {
		return nil
	}
	return replaceEtcFile(filepath.Join(root, "etc", "hostname"), hostname+"\n")
}

func replaceEtcFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	return writeFileAtomic(path, []byte(content), 0o644)
}

// writeFileAtomic replaces path (a file, or a symlink, which is replaced
// rather than followed) with data, so a reader or a crash sees the old
// content or the new, never part of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".banger-tmp"
	os.Remove(tmp)
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
