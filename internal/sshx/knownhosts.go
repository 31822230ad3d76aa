package sshx

import (
	"bufio"
	"bytes"
	"fmt"
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
	mu   sync.Mutex
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
	tmp := k.Path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	return os.Rename(tmp, k.Path)
}

// Config is the ssh_config snippet that makes plain `ssh <name>.vm` use
// banger's key and pinned host keys. Users include it from ~/.ssh/config.
func Config(keyPath, knownHosts string) string {
	return fmt.Sprintf(`# Written by banger. Include it from ~/.ssh/config with:
#   Include %s
Host *.vm
	User root
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	StrictHostKeyChecking yes
	LogLevel ERROR
`, filepath.Join(filepath.Dir(knownHosts), "config"), keyPath, knownHosts)
}
