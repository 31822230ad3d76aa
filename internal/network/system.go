package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"banger/internal/config"
)

// SetupCommand creates or repairs the host network; written so it works
// when banger is not on root's PATH (it usually lives in ~/.local/bin).
const SetupCommand = `sudo "$(command -v banger)" system setup`

// setupQuoted is SetupCommand for use inside a sentence.
const setupQuoted = "'" + SetupCommand + "'"

// Spec is the host network 'banger system setup' builds.
type Spec struct {
	Bridge   string       `json:"bridge"`
	BridgeIP netip.Addr   `json:"bridge_ip"`
	CIDR     netip.Prefix `json:"cidr"`
	Taps     int          `json:"taps"`
	// UID and GID own the TAPs: the user the daemon runs as.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Uplink restricts masquerading to one interface; "" masquerades out
	// of any interface but the bridge, which follows the default route when
	// it moves (Wi-Fi to Ethernet, VPN up or down).
	Uplink string `json:"uplink,omitempty"`
}

// SpecFromConfig is the network cfg asks for, owned by uid and gid.
func SpecFromConfig(cfg config.Config, uid, gid int) Spec {
	return Spec{Bridge: cfg.BridgeName, BridgeIP: cfg.BridgeIP, CIDR: cfg.CIDR.Masked(), Taps: cfg.TapPoolSize, UID: uid, GID: gid}
}

// Validate checks s with the rules config applies, plus tap naming.
func (s Spec) Validate() error {
	c := config.Default()
	c.BridgeName, c.BridgeIP, c.CIDR, c.TapPoolSize = s.Bridge, s.BridgeIP, s.CIDR, s.Taps
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, clash := tapIndex(s.Bridge, s.Bridge); clash {
		errs = append(errs, fmt.Errorf("bridge_name: %q is also the name of one of its taps; pick a name of at most %d bytes", s.Bridge, tapPrefixMax))
	}
	if s.UID < 0 || s.GID < 0 {
		errs = append(errs, fmt.Errorf("tap owner %d:%d is not a user and group id", s.UID, s.GID))
	}
	return errors.Join(errs...)
}

func (s Spec) firewall() FirewallSpec {
	return FirewallSpec{Bridge: s.Bridge, BridgeIP: s.BridgeIP, CIDR: s.CIDR.Masked(), Uplink: s.Uplink, DNSPort: DNSPort}
}

func (s Spec) bridgeAddr() netip.Prefix { return netip.PrefixFrom(s.BridgeIP, s.CIDR.Bits()) }

// System sets up, checks and removes the host network. Its host effects
// go through the interfaces it holds; NewSystem uses the real host.
type System struct {
	links    Links
	fw       Firewall
	sysctl   Sysctl
	resolved Resolved
	units    Units
	netns    func() (Namespace, error)
	stateDir string
	exe      string
	log      *slog.Logger
	// helperDir holds the egress helpers' sockets; pingHelper asks the
	// one at a socket whether it answers.
	helperDir  string
	pingHelper func(socket string) error
}

// Option changes a System built by NewSystem.
type Option func(*System)

// WithLinks replaces netlink.
func WithLinks(l Links) Option { return func(s *System) { s.links = l } }

// WithFirewall replaces nftables.
func WithFirewall(f Firewall) Option { return func(s *System) { s.fw = f } }

// WithSysctl replaces /proc/sys.
func WithSysctl(c Sysctl) Option { return func(s *System) { s.sysctl = c } }

// WithResolved replaces resolvectl.
func WithResolved(r Resolved) Option { return func(s *System) { s.resolved = r } }

// WithUnits replaces systemd.
func WithUnits(u Units) Option { return func(s *System) { s.units = u } }

// WithStateDir keeps the setup record in dir instead of DefaultStateDir.
func WithStateDir(dir string) Option { return func(s *System) { s.stateDir = dir } }

// WithExecutable names the banger binary the boot unit runs; the default
// is the running executable.
func WithExecutable(path string) Option { return func(s *System) { s.exe = path } }

// WithEgressHelper checks for egress helpers in dir with ping instead of
// EgressHelperDir and a real connection.
func WithEgressHelper(dir string, ping func(socket string) error) Option {
	return func(s *System) { s.helperDir, s.pingHelper = dir, ping }
}

// WithLogger logs each change; the default is silent.
func WithLogger(l *slog.Logger) Option { return func(s *System) { s.log = l } }

// NewSystem returns a System acting on the calling thread's network
// namespace and on this host's systemd.
func NewSystem(opts ...Option) *System {
	s := &System{
		links:     HostLinks(),
		fw:        HostFirewall(),
		sysctl:    HostSysctl(),
		resolved:  HostResolved(),
		units:     HostUnits(),
		netns:     currentNamespace,
		stateDir:  DefaultStateDir,
		log:       slog.New(slog.DiscardHandler),
		helperDir: EgressHelperDir,
		pingHelper: func(socket string) error {
			c := HelperEgress(socket)
			defer c.Close()
			return c.Ping()
		},
	}
	for _, o := range opts {
		o(s)
	}
	if s.exe == "" {
		s.exe, _ = os.Executable()
	}
	return s
}
