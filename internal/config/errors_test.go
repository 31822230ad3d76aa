package config

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var validKeys = "(valid keys: log_level, web_listen_addr, firecracker_bin, firecracker_jailer, jailer_bin, jailer_uid, jailer_gid, jailer_chroot_base, ssh_key_path, auth_sync, default_image_name, warm_templates, " +
	"auto_stop_stale_after, stats_poll_interval, metrics_poll_interval, bridge_name, bridge_ip, cidr, " +
	"tap_pool_size, default_dns, default_network_policy, allow_private_networks, vmm, kernel_catalog_url, default_kernel_ref, default_image_source, default_image_ref, debian_mirror)"

func TestParseErrors(t *testing.T) {
	t.Setenv("HOME", "/home/ann")
	tests := []struct {
		name string
		in   string
		want string // the whole error text
	}{
		// log_level
		{"log_level unknown", "# hi\nlog_level = \"verbose\"",
			`config.toml:2: log_level: "verbose" is not a valid log level; use one of "debug", "info", "warn", "error"`},
		{"log_level near miss", `log_level = "warning"`,
			`config.toml:1: log_level: "warning" is not a valid log level; did you mean "warn"? (use one of "debug", "info", "warn", "error")`},
		{"log_level upper case", `log_level = "INFO"`,
			`config.toml:1: log_level: "INFO" is not a valid log level; did you mean "info"? (use one of "debug", "info", "warn", "error")`},
		{"log_level integer", `log_level = 2`,
			`config.toml:1: log_level: expected a string, got an integer; write it like log_level = "info"`},

		// web_listen_addr
		{"web_listen_addr no port", `web_listen_addr = "127.0.0.1"`,
			`config.toml:1: web_listen_addr: "127.0.0.1" is not host:port; ` + listenHint},
		{"web_listen_addr named port", `web_listen_addr = "127.0.0.1:http"`,
			`config.toml:1: web_listen_addr: port "http" is not a number from 0 to 65535; ` + listenHint},
		{"web_listen_addr port too big", `web_listen_addr = "127.0.0.1:70000"`,
			`config.toml:1: web_listen_addr: port "70000" is not a number from 0 to 65535; ` + listenHint},
		{"web_listen_addr no host", `web_listen_addr = ":7777"`,
			`config.toml:1: web_listen_addr: ":7777" has no host; ` + listenHint},
		{"web_listen_addr hostname", `web_listen_addr = "example.com:80"`,
			`config.toml:1: web_listen_addr: host "example.com" is not an IP address or "localhost"; ` + listenHint},

		// firecracker_bin, ssh_key_path
		{"firecracker_bin relative", "\n\nfirecracker_bin = \"bin/firecracker\"",
			`config.toml:3: firecracker_bin: "bin/firecracker" is not an absolute path; use a path starting with / or ~/, such as "/usr/local/bin/firecracker", or "" to look up firecracker in PATH`},
		{"firecracker_bin other user's home", `firecracker_bin = "~bob/fc"`,
			`config.toml:1: firecracker_bin: "~bob/fc" is not an absolute path; use a path starting with / or ~/, such as "/usr/local/bin/firecracker", or "" to look up firecracker in PATH`},
		{"auth_sync unknown tool", `auth_sync = ["opencode", "codex"]`,
			`config.toml:1: auth_sync: "codex" is not a tool banger syncs credentials for; use any of opencode, claude, pi, or [] for none`},
		{"auth_sync string", `auth_sync = "opencode"`,
			`config.toml:1: auth_sync: expected an array, got a string; write it like auth_sync = ["opencode", "claude", "pi"]`},
		{"auth_sync numbers", `auth_sync = [1]`,
			`config.toml:1: auth_sync: expected tool names as strings, got an integer; write it like auth_sync = ["opencode", "claude"], or [] for none`},
		{"ssh_key_path relative", `ssh_key_path = "id_ed25519"`,
			`config.toml:1: ssh_key_path: "id_ed25519" is not an absolute path; use a path starting with / or ~/, such as "~/.ssh/id_ed25519", or "" for banger's own key`},

		// firecracker_jailer, jailer_*
		{"firecracker_jailer string", `firecracker_jailer = "yes"`,
			`config.toml:1: firecracker_jailer: expected a boolean, got a string; write it like firecracker_jailer = true`},
		{"firecracker_jailer integer", `firecracker_jailer = 1`,
			`config.toml:1: firecracker_jailer: expected a boolean, got an integer; write it like firecracker_jailer = true`},
		{"jailer without ids", "# jail it\nfirecracker_jailer = true", strings.Join([]string{
			`config.toml:2: jailer_uid: 0 is root's user id, and firecracker_jailer is on; set jailer_uid to an unprivileged user id for Firecracker to run as, such as jailer_uid = 900 (jailer_uid is not set, so its default applies)`,
			`config.toml:2: jailer_gid: 0 is root's group id, and firecracker_jailer is on; set jailer_gid to an unprivileged group id for Firecracker to run as, such as jailer_gid = 900 (jailer_gid is not set, so its default applies)`,
		}, "\n")},
		{"jailer with root uid", "firecracker_jailer = true\njailer_gid = 900\njailer_uid = 0",
			`config.toml:3: jailer_uid: 0 is root's user id, and firecracker_jailer is on; set jailer_uid to an unprivileged user id for Firecracker to run as, such as jailer_uid = 900`},
		{"jailer_uid negative", `jailer_uid = -1`,
			`config.toml:1: jailer_uid: -1 is not a user or group id; use a number from 0 to 4294967294`},
		{"jailer_gid too big", `jailer_gid = 4294967295`,
			`config.toml:1: jailer_gid: 4294967295 is not a user or group id; use a number from 0 to 4294967294`},
		{"jailer_uid string", `jailer_uid = "900"`,
			`config.toml:1: jailer_uid: expected an integer, got a string; write it like jailer_uid = 900`},
		{"jailer_bin relative", `jailer_bin = "jailer"`,
			`config.toml:1: jailer_bin: "jailer" is not an absolute path; use a path starting with / or ~/, such as "/usr/local/bin/jailer", or "" to look up jailer in PATH`},
		{"jailer_chroot_base relative", `jailer_chroot_base = "srv/jailer"`,
			`config.toml:1: jailer_chroot_base: "srv/jailer" is not an absolute path; use a path starting with / or ~/, such as "/srv/jailer" on the filesystem of banger's state directory, or "" for the jailer's default`},
		{"jailer_uid bad and jailer on", "firecracker_jailer = true\njailer_uid = -5\njailer_gid = 7",
			`config.toml:2: jailer_uid: -5 is not a user or group id; use a number from 0 to 4294967294`},

		// default_image_name
		{"default_image_name upper and underscore", `default_image_name = "My_Image"`,
			`config.toml:1: default_image_name: "My_Image" is not a valid image name; use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-', such as "my-image"`},
		{"default_image_name leading dash", `default_image_name = "-base"`,
			`config.toml:1: default_image_name: "-base" is not a valid image name; use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-', such as "base"`},
		{"default_image_name empty", `default_image_name = ""`,
			`config.toml:1: default_image_name: "" is not a valid image name; use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-', such as "default"`},
		{"default_image_name 64 chars", `default_image_name = "` + strings.Repeat("a", 64) + `"`,
			`config.toml:1: default_image_name: "` + strings.Repeat("a", 64) + `" is not a valid image name; use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-', such as "` + strings.Repeat("a", 63) + `"`},

		// durations
		{"auto_stop_stale_after negative", `auto_stop_stale_after = "-5m"`,
			`config.toml:1: auto_stop_stale_after: -5m is negative; use a positive duration such as "2h", or "0" to disable`},
		{"auto_stop_stale_after words", `auto_stop_stale_after = "soon"`,
			`config.toml:1: auto_stop_stale_after: "soon" is not a duration; use a Go duration such as "10s" or "2m", or "0" to disable`},
		{"auto_stop_stale_after integer", `auto_stop_stale_after = 30`,
			`config.toml:1: auto_stop_stale_after: expected a string, got an integer; write it like auto_stop_stale_after = "2h"`},
		{"stats_poll_interval words", "log_level = \"info\"\n\n\n\nstats_poll_interval = \"10 seconds\"",
			`config.toml:5: stats_poll_interval: "10 seconds" is not a duration; use a Go duration such as "10s" or "2m"`},
		{"stats_poll_interval too short", `stats_poll_interval = "500ms"`,
			`config.toml:1: stats_poll_interval: 500ms is too short; use at least "1s"`},
		{"stats_poll_interval no unit", `stats_poll_interval = "10"`,
			`config.toml:1: stats_poll_interval: "10" has no unit; use a Go duration such as "10s" or "2m"`},
		{"metrics_poll_interval zero", `metrics_poll_interval = "0"`,
			`config.toml:1: metrics_poll_interval: 0 is too short; use at least "1s"`},
		{"metrics_poll_interval empty", `metrics_poll_interval = ""`,
			`config.toml:1: metrics_poll_interval: "" is not a duration; use a Go duration such as "10s" or "2m"`},

		// bridge_name
		{"bridge_name empty", `bridge_name = ""`,
			`config.toml:1: bridge_name: is empty; use letters, digits, '-' or '_', such as "banger0"`},
		{"bridge_name too long", `bridge_name = "bangerbridge0123"`,
			`config.toml:1: bridge_name: "bangerbridge0123" is 16 bytes long; Linux interface names are at most 15, use letters, digits, '-' or '_', such as "banger0"`},
		{"bridge_name space", `bridge_name = "br 0"`,
			`config.toml:1: bridge_name: "br 0" contains ' ', which Linux interface names cannot hold; use letters, digits, '-' or '_', such as "banger0"`},
		{"bridge_name slash", `bridge_name = "br/0"`,
			`config.toml:1: bridge_name: "br/0" contains '/', which Linux interface names cannot hold; use letters, digits, '-' or '_', such as "banger0"`},
		{"bridge_name colon", `bridge_name = "br:0"`,
			`config.toml:1: bridge_name: "br:0" contains ':', which Linux interface names cannot hold; use letters, digits, '-' or '_', such as "banger0"`},
		{"bridge_name dotdot", `bridge_name = ".."`,
			`config.toml:1: bridge_name: ".." is not a valid interface name; use letters, digits, '-' or '_', such as "banger0"`},

		// bridge_ip
		{"bridge_ip outside cidr", "# net\n\n\n\n\n\nbridge_ip = \"10.0.0.1\"",
			`config.toml:7: bridge_ip: 10.0.0.1 is outside cidr 172.16.0.0/24; pick an address inside it such as 172.16.0.1`},
		{"bridge_ip network address", "cidr = \"172.16.0.0/24\"\nbridge_ip = \"172.16.0.0\"",
			`config.toml:2: bridge_ip: 172.16.0.0 is the network address of cidr 172.16.0.0/24; pick a host address such as 172.16.0.1`},
		{"bridge_ip broadcast address", `bridge_ip = "172.16.0.255"`,
			`config.toml:1: bridge_ip: 172.16.0.255 is the broadcast address of cidr 172.16.0.0/24; pick a host address such as 172.16.0.1`},
		{"bridge_ip ipv6", `bridge_ip = "fd00::1"`,
			`config.toml:1: bridge_ip: fd00::1 is not an IPv4 address; the guest network is IPv4 only, use an address such as 172.16.0.1`},
		{"bridge_ip malformed", `bridge_ip = "172.16.0"`,
			`config.toml:1: bridge_ip: "172.16.0" is not an IP address; use an IPv4 address inside cidr, such as "172.16.0.1"`},

		// cidr
		{"cidr host bits", "# net\ncidr = \"172.16.0.5/24\"\nbridge_ip = \"172.16.0.1\"",
			`config.toml:2: cidr: 172.16.0.5/24 has host bits set; use 172.16.0.0/24`},
		{"cidr too small", `cidr = "172.16.0.0/30"`,
			`config.toml:1: cidr: 172.16.0.0/30 has prefix length /30; use a length from /16 to /29, such as 172.16.0.0/24`},
		{"cidr too large", `cidr = "10.0.0.0/8"`,
			`config.toml:1: cidr: 10.0.0.0/8 has prefix length /8; use a length from /16 to /29, such as 10.0.0.0/24`},
		{"cidr ipv6", `cidr = "fd00::/64"`,
			`config.toml:1: cidr: fd00::/64 is not an IPv4 prefix; the guest network is IPv4 only, use one such as 172.16.0.0/24`},
		{"cidr malformed", `cidr = "172.16.0.0"`,
			`config.toml:1: cidr: "172.16.0.0" is not a CIDR prefix; use one such as "172.16.0.0/24"`},
		{"cidr leaves default bridge_ip outside", "# move the network\ncidr = \"10.1.0.0/24\"",
			`config.toml:2: bridge_ip: 172.16.0.1 is outside cidr 10.1.0.0/24; pick an address inside it such as 10.1.0.1 (bridge_ip is not set, so its default applies)`},

		// tap_pool_size
		{"tap_pool_size zero", `tap_pool_size = 0`,
			`config.toml:1: tap_pool_size: 0 is out of range; use a number from 1 to 256`},
		{"tap_pool_size too big", `tap_pool_size = 257`,
			`config.toml:1: tap_pool_size: 257 is out of range; use a number from 1 to 256`},
		{"tap_pool_size string", "# taps\ntap_pool_size = \"8\"",
			`config.toml:2: tap_pool_size: expected an integer, got a string; write it like tap_pool_size = 8`},
		{"tap_pool_size float", `tap_pool_size = 1.5`,
			`config.toml:1: tap_pool_size: expected an integer, got a float; write it like tap_pool_size = 8`},
		{"tap_pool_size more than cidr holds", "tap_pool_size = 30\ncidr = \"172.16.0.0/27\"",
			`config.toml:1: tap_pool_size: 30 is more than the 29 guest addresses in cidr 172.16.0.0/27; use at most 29, or a larger cidr`},
		{"tap_pool_size default vs small cidr", "cidr = \"172.16.0.0/29\"",
			`config.toml:1: tap_pool_size: 8 is more than the 5 guest addresses in cidr 172.16.0.0/29; use at most 5, or a larger cidr (tap_pool_size is not set, so its default applies)`},

		// default_dns
		{"default_dns empty", `default_dns = ""`,
			`config.toml:1: default_dns: "" lists no servers; ` + dnsHint},
		{"default_dns malformed", `default_dns = "1.1.1.1, 1.1.1"`,
			`config.toml:1: default_dns: "1.1.1" is not an IP address; ` + dnsHint},
		{"default_dns trailing comma", `default_dns = "1.1.1.1,"`,
			`config.toml:1: default_dns: "" is not an IP address; ` + dnsHint},
		{"default_dns ipv6", `default_dns = "2606:4700::1111"`,
			`config.toml:1: default_dns: 2606:4700::1111 is not an IPv4 address; ` + dnsHint},
		{"default_dns array", `default_dns = ["1.1.1.1"]`,
			`config.toml:1: default_dns: expected a string, got an array; write it like default_dns = "1.1.1.1,8.8.8.8"`},

		// network policy
		{"network policy unknown", `default_network_policy = "open"`,
			`config.toml:1: default_network_policy: "open" is not a network policy; use "full", "none" or "allow"`},

		// vmm
		{"vmm unknown", `vmm = "kvm"`,
			`config.toml:1: vmm: "kvm" is not a valid vmm; use one of "firecracker", "qemu"`},
		{"vmm typo", `vmm = "qemy"`,
			`config.toml:1: vmm: "qemy" is not a valid vmm; did you mean "qemu"? (use one of "firecracker", "qemu")`},
		{"vmm boolean", `vmm = true`,
			`config.toml:1: vmm: expected a string, got a boolean; write it like vmm = "firecracker"`},

		// kernel_catalog_url
		{"kernel_catalog_url scheme", `kernel_catalog_url = "ftp://example.com/k.json"`,
			`config.toml:1: kernel_catalog_url: "ftp://example.com/k.json" has unsupported scheme "ftp"; ` + catalogHint},
		{"kernel_catalog_url relative", `kernel_catalog_url = "kernels.json"`,
			`config.toml:1: kernel_catalog_url: "kernels.json" is neither a URL nor an absolute path; ` + catalogHint},
		{"kernel_catalog_url no host", `kernel_catalog_url = "https:///k.json"`,
			`config.toml:1: kernel_catalog_url: "https:///k.json" has no host; ` + catalogHint},
		{"kernel_catalog_url file with host", `kernel_catalog_url = "file://srv/k.json"`,
			`config.toml:1: kernel_catalog_url: "file://srv/k.json" does not name an absolute path; write a file URL as "file:///srv/kernels.json"`},

		// default_kernel_ref
		{"default_kernel_ref upper case", `default_kernel_ref = "Debian"`,
			`config.toml:1: default_kernel_ref: "Debian" is not a kernel name (lowercase letters, digits, '.', '-' and '_', starting with a letter or digit); ` + kernelRefHint},
		{"default_kernel_ref leading dot", `default_kernel_ref = ".partial"`,
			`config.toml:1: default_kernel_ref: ".partial" is not a kernel name (lowercase letters, digits, '.', '-' and '_', starting with a letter or digit); ` + kernelRefHint},
		{"default_kernel_ref slash", `default_kernel_ref = "a/b"`,
			`config.toml:1: default_kernel_ref: "a/b" is not a kernel name (lowercase letters, digits, '.', '-' and '_', starting with a letter or digit); ` + kernelRefHint},
		{"default_kernel_ref too long", `default_kernel_ref = "` + strings.Repeat("k", 64) + `"`,
			`config.toml:1: default_kernel_ref: "` + strings.Repeat("k", 64) + `" is 64 characters long; kernel names are at most 63, ` + kernelRefHint},
		{"default_kernel_ref integer", `default_kernel_ref = 6`,
			`config.toml:1: default_kernel_ref: expected a string, got an integer; write it like default_kernel_ref = "debian-6.1"`},

		// unknown keys and tables
		{"unknown key with suggestion", "log_level = \"info\"\n\nbridge_nmae = \"br1\"",
			`config.toml:3: unknown key "bridge_nmae"; did you mean "bridge_name"? ` + validKeys},
		{"unknown key without suggestion", `colour = "blue"`,
			`config.toml:1: unknown key "colour" ` + validKeys},
		{"dotted key", `network.bridge = "br1"`,
			`config.toml:1: unknown key "network.bridge" ` + validKeys},
		{"table", "vmm = \"qemu\"\n[network]\nbridge_name = \"br1\"",
			`config.toml:2: unknown table "network"; banger's config has no tables: delete the [network] line so its keys are read as top-level keys`},
		{"array table", "[[vms]]\nname = \"a\"",
			`config.toml:1: unknown table "vms"; banger's config has no tables: delete the [[vms]] line so its keys are read as top-level keys`},
		{"known key as table", "[bridge_name]\nname = \"br1\"",
			`config.toml:1: bridge_name: expected a string, got a table; write it like bridge_name = "banger0"`},

		// TOML syntax
		{"unquoted string", "# hi\nlog_level = info",
			`config.toml:2:16: expected newline but got U+006F 'o'; if info is meant as a string, quote it: log_level = "info"`},
		{"unquoted address", `web_listen_addr = 127.0.0.1:7777 # ui`,
			`config.toml:1:24: expected newline but got U+002E '.'; if 127.0.0.1:7777 is meant as a string, quote it: web_listen_addr = "127.0.0.1:7777"`},
		{"two integers", `tap_pool_size = 8 9`,
			`config.toml:1:19: expected newline but got U+0039 '9'`},
		{"unterminated string", "vmm = \"qemu\nlog_level = \"info\"",
			`config.toml:1:12: basic strings cannot have new lines`},
		{"duplicate key", "vmm = \"qemu\"\nvmm = \"firecracker\"",
			`config.toml:2:1: key vmm is already defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), "config.toml")
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error mismatch:\ngot:  %s\nwant: %s", got, tt.want)
			}
		})
	}
}

// TestParseReportsAll checks that every problem is reported, one per line
// in file order, and that a bad cidr does not also blame bridge_ip.
func TestParseReportsAll(t *testing.T) {
	in := `vmm = "kvm"
tap_pool_size = "8"
bridge_ip = "10.0.0.1"
cidr = "10.0.0.0/33"
colour = "blue"
stats_poll_interval = "0.5s"
`
	want := strings.Join([]string{
		`config.toml:1: vmm: "kvm" is not a valid vmm; use one of "firecracker", "qemu"`,
		`config.toml:2: tap_pool_size: expected an integer, got a string; write it like tap_pool_size = 8`,
		`config.toml:4: cidr: "10.0.0.0/33" is not a CIDR prefix; use one such as "172.16.0.0/24"`,
		`config.toml:5: unknown key "colour" ` + validKeys,
		`config.toml:6: stats_poll_interval: 500ms is too short; use at least "1s"`,
	}, "\n")
	_, err := Parse([]byte(in), "config.toml")
	if err == nil || err.Error() != want {
		t.Errorf("Parse error mismatch:\ngot:\n%v\nwant:\n%s", err, want)
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"network unset", func(c *Config) { c.BridgeIP, c.CIDR = netip.Addr{}, netip.Prefix{} },
			"bridge_ip: not set; use an IPv4 address inside cidr, such as 172.16.0.1\ncidr: not set; use an IPv4 prefix such as 172.16.0.0/24"},
		{"odd log level", func(c *Config) { c.LogLevel = slog.LevelInfo + 2 },
			"log_level: level INFO+2 is not one of debug, info, warn, error"},
		{"unexpanded home", func(c *Config) { c.SSHKeyPath = "~/id" },
			`ssh_key_path: "~/id" is not an absolute path; use a path starting with / or ~/, such as "~/.ssh/id_ed25519", or "" for banger's own key`},
		{"kernel ref with space", func(c *Config) { c.DefaultKernelRef = "debian 6" },
			`default_kernel_ref: "debian 6" is not a kernel name (lowercase letters, digits, '.', '-' and '_', starting with a letter or digit); ` + kernelRefHint},
		{"no dns", func(c *Config) { c.DefaultDNS = nil },
			`default_dns: no servers; ` + dnsHint},
		{"bridge outside cidr", func(c *Config) { c.BridgeIP = netip.MustParseAddr("10.0.0.1") },
			"bridge_ip: 10.0.0.1 is outside cidr 172.16.0.0/24; pick an address inside it such as 172.16.0.1"},
		{"jailer as root", func(c *Config) { c.FirecrackerJailer, c.JailerGID = true, 5 },
			"jailer_uid: 0 is root's user id, and firecracker_jailer is on; set jailer_uid to an unprivileged user id for Firecracker to run as, such as jailer_uid = 900"},
		{"several", func(c *Config) { c.VMM = "kvm"; c.TapPoolSize = 0; c.StatsPollInterval = -time.Second },
			"stats_poll_interval: -1s is too short; use at least \"1s\"\ntap_pool_size: 0 is out of range; use a number from 1 to 256\nvmm: \"kvm\" is not a valid vmm; use one of \"firecracker\", \"qemu\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("Validate error mismatch:\ngot:  %v\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	levels := []string{"debug", "info", "warn", "error"}
	tests := []struct {
		in         string
		candidates []string
		want       string
	}{
		{"bridge_nmae", keyNames, "bridge_name"},
		{"loglevel", keyNames, "log_level"},
		{"VMM", keyNames, "vmm"},
		{"x", keyNames, ""},
		{"verbos", levels, ""}, // three edits in six letters is not a typo
		{"warning", levels, "warn"},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, tt.candidates); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
