package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/authsync"
)

// VMM names accepted by the vmm key.
const (
	VMMFirecracker = "firecracker"
	VMMQEMU        = "qemu"
)

// Config is banger's effective configuration. Start from Default: the zero
// value is not valid.
type Config struct {
	LogLevel slog.Level // one of debug, info, warn, error

	// WebListenAddr is the host:port of the web UI; "" disables the UI.
	WebListenAddr string
	// FirecrackerBin is an absolute path; "" means look up "firecracker" in PATH.
	FirecrackerBin string
	// FirecrackerJailer runs each Firecracker under Firecracker's jailer:
	// a chroot, JailerUID:JailerGID, a cgroup. The jailer needs root, so
	// bangerd must run as root; off by default.
	FirecrackerJailer bool
	// JailerBin is an absolute path; "" means look up "jailer" in PATH.
	JailerBin string
	// JailerUID and JailerGID are the unprivileged user and group the
	// jailer runs Firecracker as; required (not 0) with FirecrackerJailer.
	JailerUID, JailerGID int
	// JailerChrootBase is where the jailer makes chroots, an absolute path
	// on the filesystem of banger's state directory (disks are hard-linked
	// in); "" means the jailer's default, /srv/jailer.
	JailerChrootBase string
	// SSHKeyPath is an absolute path to the private key used to reach
	// guests; "" means banger's own key, see SSHKey.
	SSHKeyPath string
	// AuthSync names the coding agents (authsync.Tools) whose host
	// credentials VMs from locally made images receive; VMs from pulled
	// images receive none unless their create asks. Empty: none.
	AuthSync []string

	// DefaultImageName is the image used when a command names none.
	DefaultImageName string
	// WarmTemplates keeps the default image's first booted VM as a
	// template, and starts later VMs of an image from its template
	// (docs/snapshots.md, "Templates").
	WarmTemplates bool
	// AutoStopStaleAfter stops a VM left stale this long; 0 disables it.
	AutoStopStaleAfter  time.Duration
	StatsPollInterval   time.Duration
	MetricsPollInterval time.Duration

	// Guest network: a bridge owning BridgeIP inside CIDR, with
	// TapPoolSize taps created ahead of time so VMs start quickly.
	BridgeName  string
	BridgeIP    netip.Addr
	CIDR        netip.Prefix
	TapPoolSize int
	DefaultDNS  []netip.Addr // IPv4 resolvers handed to guests
	// DefaultNetworkPolicy is the egress policy of VMs created without
	// --network: NetworkFull, NetworkNone or NetworkAllow.
	DefaultNetworkPolicy string
	// AllowPrivateNetworks lifts the always-deny list (private ranges,
	// link-local, other VMs, the host) for every VM.
	AllowPrivateNetworks bool

	VMM string // VMMFirecracker or VMMQEMU
	// KernelCatalogURL is an extra kernel catalog index: an http(s) or
	// file URL or an absolute path; "" means none.
	KernelCatalogURL string
	// DefaultKernelRef is the pulled catalog kernel 'banger image pull'
	// boots images with when given no --kernel-ref; "" means none.
	DefaultKernelRef string

	// DefaultImageSource says how the default image is made when it is
	// missing: DefaultImageAuto (an OCI pull when a registry answers, else
	// debootstrap), DefaultImageOCI or DefaultImageDebootstrap.
	DefaultImageSource string
	// DefaultImageRef is the OCI base of the default image.
	DefaultImageRef string
	// DebianMirror is the Debian mirror debootstrap uses; "" means the
	// host's apt sources.
	DebianMirror string

	// Warnings are problems Parse found that don't stop banger, such as a
	// web UI reachable from the network; each is "file:line: message".
	Warnings []string
}

// Default returns the configuration used for every key the file omits.
func Default() Config {
	return Config{
		LogLevel:             slog.LevelInfo,
		WebListenAddr:        "127.0.0.1:7777",
		DefaultImageName:     "default",
		AuthSync:             authsync.All(),
		WarmTemplates:        true,
		StatsPollInterval:    10 * time.Second,
		MetricsPollInterval:  60 * time.Second,
		BridgeName:           "banger0",
		BridgeIP:             netip.AddrFrom4([4]byte{172, 16, 0, 1}),
		CIDR:                 netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 0, 0}), 24),
		TapPoolSize:          8,
		DefaultDNS:           []netip.Addr{netip.AddrFrom4([4]byte{1, 1, 1, 1})},
		DefaultNetworkPolicy: NetworkFull,
		VMM:                  VMMFirecracker,
		DefaultImageSource:   DefaultImageAuto,
		DefaultImageRef:      "debian:bookworm",
	}
}

// Load reads and validates the config file at path. A missing file is not
// an error: banger runs on defaults until the user writes one.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path)
}

// SSHKey returns the private key to use for guests, defaulting to
// banger's own key under configDir.
func (c Config) SSHKey(configDir string) string {
	if c.SSHKeyPath != "" {
		return c.SSHKeyPath
	}
	return filepath.Join(configDir, "ssh", "id_ed25519")
}

// Validate checks a Config built in code with the same rules Parse applies
// to a file. Problems are joined, one per line, as "key: message".
func (c Config) Validate() error {
	var errs []error
	failed := map[string]bool{}
	for _, f := range fields {
		if err := f.check(c); err != nil {
			failed[f.key] = true
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	for _, x := range crossChecks {
		if failed[x.key] || failed[x.other] {
			continue // already reported; comparing would only add noise
		}
		if err := x.check(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.key, err))
		}
	}
	return errors.Join(errs...)
}

// Format renders c as TOML with every key, in the documented order, so
// 'banger config show' output can be pasted back into config.toml.
func (c Config) Format() string {
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "%s = %s\n", f.key, f.format(c))
	}
	return b.String()
}

// quote renders s as a TOML basic string. strconv.Quote is not used
// because TOML has no \x escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
