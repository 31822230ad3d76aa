package sshx

import (
	"banger/internal/fsutil"
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KnownHosts is banger's own known_hosts file: one pinned line per guest
// host key, naming the VM as "<name>.vm" and by address. It is never the
// user's ~/.ssh/known_hosts.
type KnownHosts struct {
	Path string
	// Config, when set, is the ssh_config snippet (see Config) rewritten
	// with every change of the pins, so each pinned VM has a Host block
	// with its address; Key is the identity it names.
	Config, Key string
	mu          sync.Mutex
}

// Pin replaces every line for name with its current keys.
func (k *KnownHosts) Pin(name, ip string, keys []string) error {
	hosts := name + ".vm"
	if ip != "" {
		hosts += "," + ip
	}
	var add []string
	for _, key := range keys {
		f := strings.Fields(key)
		if len(f) < 2 {
			return fmt.Errorf("pinning host key of %s: malformed key %q", name, key)
		}
		add = append(add, hosts+" "+f[0]+" "+f[1])
	}
	return k.rewrite(name, add)
}

// Forget removes the lines for name.
func (k *KnownHosts) Forget(name string) error { return k.rewrite(name, nil) }

func (k *KnownHosts) rewrite(name string, add []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	data, err := os.ReadFile(k.Path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading %s: %w", k.Path, err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		hosts, _, _ := strings.Cut(line, " ")
		if first, _, _ := strings.Cut(hosts, ","); first == name+".vm" {
			continue
		}
		out.WriteString(line + "\n")
	}
	for _, l := range add {
		out.WriteString(l + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(k.Path), 0o700); err != nil {
		return err
	}
	if err := writeAtomic(k.Path, out.Bytes()); err != nil {
		return err
	}
	return k.writeConfig(out.Bytes())
}

// WriteConfig writes the ssh_config snippet for the VMs pinned now.
func (k *KnownHosts) WriteConfig() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	data, err := os.ReadFile(k.Path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading %s: %w", k.Path, err)
	}
	return k.writeConfig(data)
}

func (k *KnownHosts) writeConfig(knownHosts []byte) error {
	if k.Config == "" {
		return nil
	}
	body := Config(k.Key, k.Path, pinnedHosts(knownHosts))
	if old, err := os.ReadFile(k.Config); err == nil && string(old) == body {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(k.Config), 0o700); err != nil {
		return err
	}
	return writeAtomic(k.Config, []byte(body))
}

func writeAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// Host is a pinned VM: its name under .vm and its address.
type Host struct {
	Name string
	Addr netip.Addr
}

// pinnedHosts lists the VMs of a known_hosts file with their addresses,
// once each, in file order. Lines that are not a VM name (a DNS label
// under .vm) followed by an address are skipped.
func pinnedHosts(data []byte) []Host {
	var out []Host
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		hosts, _, _ := strings.Cut(sc.Text(), " ")
		first, ip, ok := strings.Cut(hosts, ",")
		name, isVM := strings.CutSuffix(first, ".vm")
		addr, err := netip.ParseAddr(ip)
		if !ok || !isVM || err != nil || !isLabel(name) || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, Host{Name: name, Addr: addr})
	}
	return out
}

// isLabel: lowercase letters, digits and inner hyphens, at most 63 bytes,
// as VM names are.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Config is the ssh_config snippet that makes plain `ssh <name>.vm` use
// banger's key and pinned host keys. Users include it from ~/.ssh/config.
// Each VM in hosts gets a block with its address, so the name needs no
// DNS; HostKeyAlias keeps the host key check on the pinned name.
func Config(keyPath, knownHosts string, hosts []Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by banger. Include it from ~/.ssh/config with:
#   Include %s
# Each VM has a block with its address (rewritten when VMs are created,
# started or deleted), so 'ssh NAME.vm' needs no DNS.
`, filepath.Join(filepath.Dir(knownHosts), "config"))
	for _, h := range hosts {
		fmt.Fprintf(&b, "Host %s.vm\n\tHostName %s\n\tHostKeyAlias %s.vm\n", h.Name, h.Addr, h.Name)
	}
	fmt.Fprintf(&b, `Host *.vm
	User root
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	StrictHostKeyChecking yes
	LogLevel ERROR
`, keyPath, knownHosts)
	return b.String()
}
