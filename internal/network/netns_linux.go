package network

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Namespace names the network namespace a System acts on, for keying its
// setup record: the same user and bridge in two namespaces are two
// networks.
type Namespace struct {
	// Key is "" for the host's namespace, else the namespace's name under
	// /run/netns ('ip netns'), else "ns" and its inode number.
	Key string
}

// Host reports whether this is the host's own namespace, the one that
// survives a reboot and that systemd's units act on.
func (n Namespace) Host() bool { return n.Key == "" }

func (n Namespace) String() string {
	if n.Host() {
		return "the host's network namespace"
	}
	return "network namespace " + n.Key
}

// currentNamespace identifies the calling thread's network namespace.
// Without root /proc/1/ns/net cannot be read; an unnamed namespace is then
// taken for the host's.
func currentNamespace() (Namespace, error) {
	self, err := nsInode("/proc/thread-self/ns/net")
	if err != nil {
		return Namespace{}, fmt.Errorf("identifying the network namespace: %w", err)
	}
	if init, err := nsInode("/proc/1/ns/net"); err == nil && init == self {
		return Namespace{}, nil
	}
	if names, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range names {
			if ino, err := nsInode(filepath.Join("/run/netns", e.Name())); err == nil && ino == self && validNSName(e.Name()) {
				return Namespace{Key: e.Name()}, nil
			}
		}
	}
	if _, err := nsInode("/proc/1/ns/net"); err != nil {
		return Namespace{}, nil
	}
	return Namespace{Key: fmt.Sprintf("ns%d", self)}, nil
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// validNSName keeps a namespace name usable inside a file name.
func validNSName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
