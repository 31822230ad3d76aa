package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// forwardKey is the IPv4 forwarding switch (per network namespace).
const forwardKey = "net.ipv4.ip_forward"

// Sysctl reads and writes kernel parameters by dotted name.
type Sysctl interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

// HostSysctl returns Sysctl over /proc/sys. net.* keys belong to the
// network namespace of the thread that opens the file.
func HostSysctl() Sysctl { return procSysctl{} }

type procSysctl struct{}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func (procSysctl) Get(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (procSysctl) Set(key, value string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("setting %s to %s: %w", key, value, err)
	}
	return nil
}
