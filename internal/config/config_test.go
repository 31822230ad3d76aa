package config

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// netip types have unexported fields but are comparable with ==.
var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseGoodValues(t *testing.T) {
	t.Setenv("HOME", "/home/ann")
	tests := []struct {
		name string
		in   string
		want func(c *Config) // applied to Default()
	}{
		{"empty file", ``, func(c *Config) {}},
		{"comments only", "# nothing yet\n\n", func(c *Config) {}},
		{"log_level debug", `log_level = "debug"`, func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{"log_level warn literal string", `log_level = 'warn'`, func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{"log_level error", `log_level = "error"`, func(c *Config) { c.LogLevel = slog.LevelError }},
		{"web_listen_addr localhost", `web_listen_addr = "localhost:8080"`, func(c *Config) { c.WebListenAddr = "localhost:8080" }},
		{"web_listen_addr ipv6 loopback port 0", `web_listen_addr = "[::1]:0"`, func(c *Config) { c.WebListenAddr = "[::1]:0" }},
		{"web_listen_addr disabled", `web_listen_addr = ""`, func(c *Config) { c.WebListenAddr = "" }},
		{"firecracker_bin absolute", `firecracker_bin = "/opt/fc/firecracker"`, func(c *Config) { c.FirecrackerBin = "/opt/fc/firecracker" }},
		{"firecracker_bin home", `firecracker_bin = "~/bin/firecracker"`, func(c *Config) { c.FirecrackerBin = "/home/ann/bin/firecracker" }},
		{"firecracker_jailer on", "firecracker_jailer = true\njailer_uid = 900\njailer_gid = 901", func(c *Config) {
			c.FirecrackerJailer, c.JailerUID, c.JailerGID = true, 900, 901
		}},
		{"firecracker_jailer off", `firecracker_jailer = false`, func(c *Config) {}},
		{"jailer ids without the jailer", "jailer_uid = 0\njailer_gid = 4294967294", func(c *Config) { c.JailerGID = 4294967294 }},
		{"jailer_bin absolute", `jailer_bin = "/opt/fc/jailer"`, func(c *Config) { c.JailerBin = "/opt/fc/jailer" }},
		{"jailer_bin home", `jailer_bin = "~/bin/jailer"`, func(c *Config) { c.JailerBin = "/home/ann/bin/jailer" }},
		{"jailer_chroot_base", `jailer_chroot_base = "/var/lib/banger/jail"`, func(c *Config) { c.JailerChrootBase = "/var/lib/banger/jail" }},
		{"ssh_key_path absolute", `ssh_key_path = "/keys/id"`, func(c *Config) { c.SSHKeyPath = "/keys/id" }},
		{"ssh_key_path home", `ssh_key_path = "~/.ssh/id_ed25519"`, func(c *Config) { c.SSHKeyPath = "/home/ann/.ssh/id_ed25519" }},
		{"auth_sync some", `auth_sync = ["claude", "opencode"]`, func(c *Config) { c.AuthSync = []string{"claude", "opencode"} }},
		{"auth_sync none", `auth_sync = []`, func(c *Config) { c.AuthSync = []string{} }},
		{"default_image_name", `default_image_name = "ubuntu-24-04"`, func(c *Config) { c.DefaultImageName = "ubuntu-24-04" }},
		{"default_image_name 63 chars", `default_image_name = "` + strings.Repeat("a", 63) + `"`, func(c *Config) { c.DefaultImageName = strings.Repeat("a", 63) }},
		{"auto_stop_stale_after", `auto_stop_stale_after = "2h30m"`, func(c *Config) { c.AutoStopStaleAfter = 150 * time.Minute }},
		{"auto_stop_stale_after zero", `auto_stop_stale_after = "0"`, func(c *Config) {}},
		{"auto_stop_stale_after empty", `auto_stop_stale_after = ""`, func(c *Config) {}},
		{"stats_poll_interval minimum", `stats_poll_interval = "1s"`, func(c *Config) { c.StatsPollInterval = time.Second }},
		{"metrics_poll_interval", `metrics_poll_interval = "5m"`, func(c *Config) { c.MetricsPollInterval = 5 * time.Minute }},
		{"bridge_name 15 bytes", `bridge_name = "br-dev_12345678"`, func(c *Config) { c.BridgeName = "br-dev_12345678" }},
		{"bridge_ip", `bridge_ip = "172.16.0.254"`, func(c *Config) { c.BridgeIP = netip.MustParseAddr("172.16.0.254") }},
		{"cidr and bridge_ip", "cidr = \"10.77.0.0/16\"\nbridge_ip = \"10.77.255.254\"", func(c *Config) {
			c.CIDR = netip.MustParsePrefix("10.77.0.0/16")
			c.BridgeIP = netip.MustParseAddr("10.77.255.254")
		}},
		{"tap_pool_size 1", `tap_pool_size = 1`, func(c *Config) { c.TapPoolSize = 1 }},
		{"tap_pool_size 256 in /16", "cidr = \"172.16.0.0/16\"\ntap_pool_size = 256", func(c *Config) {
			c.CIDR = netip.MustParsePrefix("172.16.0.0/16")
			c.TapPoolSize = 256
		}},
		{"tap_pool_size fills /29", "cidr = \"172.16.0.0/29\"\ntap_pool_size = 5", func(c *Config) {
			c.CIDR = netip.MustParsePrefix("172.16.0.0/29")
			c.TapPoolSize = 5
		}},
		{"network policy", "default_network_policy = \"allow\"\nallow_private_networks = true", func(c *Config) { c.DefaultNetworkPolicy, c.AllowPrivateNetworks = "allow", true }},
		{"default_dns list", `default_dns = "9.9.9.9, 149.112.112.112"`, func(c *Config) { c.DefaultDNS = addrs("9.9.9.9", "149.112.112.112") }},
		{"vmm qemu", `vmm = "qemu"`, func(c *Config) { c.VMM = VMMQEMU }},
		{"kernel_catalog_url https", `kernel_catalog_url = "https://example.com/k.json"`, func(c *Config) { c.KernelCatalogURL = "https://example.com/k.json" }},
		{"kernel_catalog_url http", `kernel_catalog_url = "http://10.0.0.2:8000/k.json"`, func(c *Config) { c.KernelCatalogURL = "http://10.0.0.2:8000/k.json" }},
		{"kernel_catalog_url file", `kernel_catalog_url = "file:///srv/k.json"`, func(c *Config) { c.KernelCatalogURL = "file:///srv/k.json" }},
		{"kernel_catalog_url path", `kernel_catalog_url = "/srv/k.json"`, func(c *Config) { c.KernelCatalogURL = "/srv/k.json" }},
		{"kernel_catalog_url home", `kernel_catalog_url = "~/k.json"`, func(c *Config) { c.KernelCatalogURL = "/home/ann/k.json" }},
		{"default_kernel_ref", `default_kernel_ref = "debian-6.1.0_cloud"`, func(c *Config) { c.DefaultKernelRef = "debian-6.1.0_cloud" }},
		{"default_kernel_ref 63 chars", `default_kernel_ref = "` + strings.Repeat("k", 63) + `"`, func(c *Config) { c.DefaultKernelRef = strings.Repeat("k", 63) }},
		{"default_kernel_ref empty", `default_kernel_ref = ""`, func(c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), "config.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// everyKey sets every key away from its default.
const everyKey = `# banger config
log_level = "debug"
web_listen_addr = "127.0.0.1:9000"
firecracker_bin = "/opt/firecracker"
firecracker_jailer = true
jailer_bin = "/opt/jailer"
jailer_uid = 900
jailer_gid = 901
jailer_chroot_base = "/var/lib/banger/jail"
ssh_key_path = "/keys/banger"
auth_sync = ["pi"]
default_image_name = "alpine"
warm_templates = false
auto_stop_stale_after = "45m"
stats_poll_interval = "5s"
metrics_poll_interval = "2m"
bridge_name = "bg1"
bridge_ip = "10.9.8.1"
cidr = "10.9.8.0/28"
tap_pool_size = 4
default_dns = "9.9.9.9,1.0.0.1"
default_network_policy = "none"
allow_private_networks = true
vmm = "qemu"
kernel_catalog_url = "https://example.com/kernels.json"
default_kernel_ref = "debian-6.1"
default_image_source = "debootstrap"
default_image_ref = "ghcr.io/org/devbox:2024"
debian_mirror = "http://mirror.local/debian"
`

func everyKeyConfig() Config {
	return Config{
		LogLevel:             slog.LevelDebug,
		WebListenAddr:        "127.0.0.1:9000",
		FirecrackerBin:       "/opt/firecracker",
		FirecrackerJailer:    true,
		JailerBin:            "/opt/jailer",
		JailerUID:            900,
		JailerGID:            901,
		JailerChrootBase:     "/var/lib/banger/jail",
		SSHKeyPath:           "/keys/banger",
		DefaultImageName:     "alpine",
		AuthSync:             []string{"pi"},
		WarmTemplates:        false,
		AutoStopStaleAfter:   45 * time.Minute,
		StatsPollInterval:    5 * time.Second,
		MetricsPollInterval:  2 * time.Minute,
		BridgeName:           "bg1",
		BridgeIP:             netip.MustParseAddr("10.9.8.1"),
		CIDR:                 netip.MustParsePrefix("10.9.8.0/28"),
		TapPoolSize:          4,
		DefaultDNS:           addrs("9.9.9.9", "1.0.0.1"),
		DefaultNetworkPolicy: NetworkNone,
		AllowPrivateNetworks: true,
		VMM:                  VMMQEMU,
		KernelCatalogURL:     "https://example.com/kernels.json",
		DefaultKernelRef:     "debian-6.1",
		DefaultImageSource:   DefaultImageDebootstrap,
		DefaultImageRef:      "ghcr.io/org/devbox:2024",
		DebianMirror:         "http://mirror.local/debian",
	}
}

func TestParseEveryKey(t *testing.T) {
	got, err := Parse([]byte(everyKey), "config.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(everyKeyConfig(), got, cmpNetip); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestFormatDefault(t *testing.T) {
	want := `log_level = "info"
web_listen_addr = "127.0.0.1:7777"
firecracker_bin = ""
firecracker_jailer = false
jailer_bin = ""
jailer_uid = 0
jailer_gid = 0
jailer_chroot_base = ""
ssh_key_path = ""
auth_sync = ["opencode", "claude", "pi"]
default_image_name = "default"
warm_templates = true
auto_stop_stale_after = "0"
stats_poll_interval = "10s"
metrics_poll_interval = "1m"
bridge_name = "banger0"
bridge_ip = "172.16.0.1"
cidr = "172.16.0.0/24"
tap_pool_size = 8
default_dns = "1.1.1.1"
default_network_policy = "full"
allow_private_networks = false
vmm = "firecracker"
kernel_catalog_url = ""
default_kernel_ref = ""
default_image_source = "auto"
default_image_ref = "debian:bookworm"
debian_mirror = ""
`
	if diff := cmp.Diff(want, Default().Format()); diff != "" {
		t.Errorf("Format mismatch (-want +got):\n%s", diff)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	odd := everyKeyConfig()
	odd.FirecrackerBin = `/opt/"quoted"\dir/fc` + "\t"
	odd.AutoStopStaleAfter = 90*time.Minute + 1500*time.Millisecond
	odd.WebListenAddr = ""
	for name, c := range map[string]Config{"default": Default(), "every key": everyKeyConfig(), "odd values": odd} {
		t.Run(name, func(t *testing.T) {
			text := c.Format()
			got, err := Parse([]byte(text), "shown.toml")
			if err != nil {
				t.Fatalf("Parse(Format()): %v\n%s", err, text)
			}
			if diff := cmp.Diff(c, got, cmpNetip); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s\nformatted:\n%s", diff, text)
			}
		})
	}
}

func TestExposedWebUIWarns(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"# ui\nweb_listen_addr = \"0.0.0.0:7777\"\n", []string{
			"config.toml:2: web_listen_addr: 0.0.0.0:7777 exposes the web UI to the network; use 127.0.0.1:7777 to keep it on this machine",
		}},
		{`web_listen_addr = "[2001:db8::1]:80"`, []string{
			"config.toml:1: web_listen_addr: [2001:db8::1]:80 exposes the web UI to the network; use 127.0.0.1:80 to keep it on this machine",
		}},
		{`web_listen_addr = "127.0.0.2:7777"`, nil},
		{`web_listen_addr = "localhost:7777"`, nil},
		{`web_listen_addr = ""`, nil},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.in), "config.toml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, c.Warnings); diff != "" {
			t.Errorf("Parse(%q) warnings mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()

	got, err := Load(filepath.Join(dir, "missing.toml"))
	if err != nil {
		t.Fatalf("Load(missing): %v", err)
	}
	if diff := cmp.Diff(Default(), got, cmpNetip); diff != "" {
		t.Errorf("Load(missing) mismatch (-want +got):\n%s", diff)
	}

	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(everyKey), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(everyKeyConfig(), got, cmpNetip); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}

	if err := os.WriteFile(path, []byte("vmm = \"kvm\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + `:1: vmm: "kvm" is not a valid vmm`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(bad) = %v, want prefix %q", err, want)
	}

	if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), "reading config: ") {
		t.Errorf("Load(directory) = %v, want a reading error", err)
	}
}

func TestHomeExpansion(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	c, err := Parse([]byte("ssh_key_path = \"~/keys/id\"\nfirecracker_bin = \"~/fc\"\n"), "config.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.SSHKeyPath, filepath.Join(home, "keys/id"); got != want {
		t.Errorf("SSHKeyPath = %q, want %q", got, want)
	}
	if got, want := c.FirecrackerBin, filepath.Join(home, "fc"); got != want {
		t.Errorf("FirecrackerBin = %q, want %q", got, want)
	}

	t.Setenv("HOME", "")
	_, err = Parse([]byte("# keys\nssh_key_path = \"~/keys/id\"\n"), "config.toml")
	want := `config.toml:2: ssh_key_path: cannot expand "~/keys/id": $HOME is not set; set HOME or write an absolute path`
	if err == nil || err.Error() != want {
		t.Errorf("Parse with HOME unset = %v, want %q", err, want)
	}
}

func TestSSHKey(t *testing.T) {
	if got, want := Default().SSHKey("/cfg/banger"), "/cfg/banger/ssh/id_ed25519"; got != want {
		t.Errorf("default SSHKey = %q, want %q", got, want)
	}
	c := Default()
	c.SSHKeyPath = "/keys/mine"
	if got, want := c.SSHKey("/cfg/banger"), "/keys/mine"; got != want {
		t.Errorf("SSHKey = %q, want %q", got, want)
	}
}
