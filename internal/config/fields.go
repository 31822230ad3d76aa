package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TOML types a key may hold, phrased for "expected X, got Y" messages.
const (
	tomlString  = "a string"
	tomlInteger = "an integer"
	tomlBoolean = "a boolean"
)

// field is one config key: how to read it from TOML, check it, and write
// it back. Keeping all four together keeps Parse, Validate and Format in
// step when a key is added.
type field struct {
	key  string
	want string // tomlString, tomlInteger or tomlBoolean
	// example is a good TOML value, shown as the fix for a type mismatch.
	example string
	// set stores a decoded value of type want into c, failing only when
	// the value cannot be converted at all (e.g. not a duration).
	set func(c *Config, v any) error
	// check validates the typed value; Validate runs it on configs built
	// in code, so it must not depend on how the value was written.
	check  func(c Config) error
	format func(c Config) string
}

// fields lists every key in the order Format writes them.
var fields = []field{
	{
		key: "log_level", want: tomlString, example: `"info"`,
		set:    setLogLevel,
		check:  func(c Config) error { return checkLogLevel(c.LogLevel) },
		format: func(c Config) string { return quote(levelName(c.LogLevel)) },
	},
	textField("web_listen_addr", `"127.0.0.1:7777"`, func(c *Config) *string { return &c.WebListenAddr }, checkListenAddr),
	pathField("firecracker_bin", `"/usr/local/bin/firecracker"`, func(c *Config) *string { return &c.FirecrackerBin },
		checkAbs(`"/usr/local/bin/firecracker", or "" to look up firecracker in PATH`)),
	boolField("firecracker_jailer", func(c *Config) *bool { return &c.FirecrackerJailer }),
	pathField("jailer_bin", `"/usr/local/bin/jailer"`, func(c *Config) *string { return &c.JailerBin },
		checkAbs(`"/usr/local/bin/jailer", or "" to look up jailer in PATH`)),
	idField("jailer_uid", func(c *Config) *int { return &c.JailerUID }),
	idField("jailer_gid", func(c *Config) *int { return &c.JailerGID }),
	pathField("jailer_chroot_base", `"/srv/jailer"`, func(c *Config) *string { return &c.JailerChrootBase },
		checkAbs(`"/srv/jailer" on the filesystem of banger's state directory, or "" for the jailer's default`)),
	pathField("ssh_key_path", `"~/.ssh/id_ed25519"`, func(c *Config) *string { return &c.SSHKeyPath },
		checkAbs(`"~/.ssh/id_ed25519", or "" for banger's own key`)),
	authSyncField,
	textField("default_image_name", `"default"`, func(c *Config) *string { return &c.DefaultImageName }, checkImageName),
	boolField("warm_templates", func(c *Config) *bool { return &c.WarmTemplates }),
	durationField("auto_stop_stale_after", `"2h"`, func(c *Config) *time.Duration { return &c.AutoStopStaleAfter }, 0),
	durationField("stats_poll_interval", `"10s"`, func(c *Config) *time.Duration { return &c.StatsPollInterval }, time.Second),
	durationField("metrics_poll_interval", `"60s"`, func(c *Config) *time.Duration { return &c.MetricsPollInterval }, time.Second),
	textField("bridge_name", `"banger0"`, func(c *Config) *string { return &c.BridgeName }, checkBridgeName),
	{
		key: "bridge_ip", want: tomlString, example: `"172.16.0.1"`,
		set:    setBridgeIP,
		check:  func(c Config) error { return checkBridgeIP(c.BridgeIP) },
		format: func(c Config) string { return quote(c.BridgeIP.String()) },
	},
	{
		key: "cidr", want: tomlString, example: `"172.16.0.0/24"`,
		set:    setCIDR,
		check:  func(c Config) error { return checkCIDR(c.CIDR) },
		format: func(c Config) string { return quote(c.CIDR.String()) },
	},
	{
		key: "tap_pool_size", want: tomlInteger, example: `8`,
		set:    func(c *Config, v any) error { c.TapPoolSize = int(v.(int64)); return nil },
		check:  func(c Config) error { return checkPoolSize(c.TapPoolSize) },
		format: func(c Config) string { return strconv.Itoa(c.TapPoolSize) },
	},
	{
		key: "default_dns", want: tomlString, example: `"1.1.1.1,8.8.8.8"`,
		set:    setDNS,
		check:  func(c Config) error { return checkDNS(c.DefaultDNS) },
		format: formatDNS,
	},
	textField("default_network_policy", `"full"`, func(c *Config) *string { return &c.DefaultNetworkPolicy }, checkNetworkPolicy),
	boolField("allow_private_networks", func(c *Config) *bool { return &c.AllowPrivateNetworks }),
	textField("vmm", `"firecracker"`, func(c *Config) *string { return &c.VMM }, checkVMM),
	pathField("kernel_catalog_url", `"https://example.com/kernels.json"`, func(c *Config) *string { return &c.KernelCatalogURL }, checkCatalogURL),
	textField("default_kernel_ref", `"debian-6.1"`, func(c *Config) *string { return &c.DefaultKernelRef }, checkKernelRef),
	textField("default_image_source", `"auto"`, func(c *Config) *string { return &c.DefaultImageSource }, checkImageSource),
	textField("default_image_ref", `"debian:bookworm"`, func(c *Config) *string { return &c.DefaultImageRef }, checkImageRef),
	textField("debian_mirror", `"http://deb.debian.org/debian"`, func(c *Config) *string { return &c.DebianMirror }, checkMirror),
}

// textField is a string key stored as written.
func textField(key, example string, ptr func(*Config) *string, check func(string) error) field {
	return field{
		key: key, want: tomlString, example: example,
		set:    func(c *Config, v any) error { *ptr(c) = v.(string); return nil },
		check:  func(c Config) error { return check(*ptr(&c)) },
		format: func(c Config) string { return quote(*ptr(&c)) },
	}
}

// boolField is a true/false key.
func boolField(key string, ptr func(*Config) *bool) field {
	return field{
		key: key, want: tomlBoolean, example: "true",
		set:    func(c *Config, v any) error { *ptr(c) = v.(bool); return nil },
		check:  func(c Config) error { return nil },
		format: func(c Config) string { return strconv.FormatBool(*ptr(&c)) },
	}
}

// idField is a Linux user or group id.
func idField(key string, ptr func(*Config) *int) field {
	return field{
		key: key, want: tomlInteger, example: "900",
		set:    func(c *Config, v any) error { *ptr(c) = int(v.(int64)); return nil },
		check:  func(c Config) error { return checkID(*ptr(&c)) },
		format: func(c Config) string { return strconv.Itoa(*ptr(&c)) },
	}
}

// pathField is a string key whose leading "~/" means $HOME, as in a shell.
func pathField(key, example string, ptr func(*Config) *string, check func(string) error) field {
	f := textField(key, example, ptr, check)
	f.set = func(c *Config, v any) error {
		s, err := expandHome(v.(string))
		*ptr(c) = s
		return err
	}
	return f
}

func expandHome(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, "~/")
	if !ok {
		return s, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return s, fmt.Errorf("cannot expand %q: $HOME is not set; set HOME or write an absolute path", s)
	}
	return filepath.Join(home, rest), nil
}

// durationField is a Go duration string no shorter than least; when least is 0,
// "0" and "" disable the feature.
func durationField(key, example string, ptr func(*Config) *time.Duration, least time.Duration) field {
	hint := `use a Go duration such as "10s" or "2m"`
	if least == 0 {
		hint += `, or "0" to disable`
	}
	return field{
		key: key, want: tomlString, example: example,
		set: func(c *Config, v any) error {
			d, err := parseDuration(v.(string), least == 0, hint)
			*ptr(c) = d
			return err
		},
		check:  func(c Config) error { return checkDuration(*ptr(&c), least) },
		format: func(c Config) string { return quote(formatDuration(*ptr(&c))) },
	}
}

func parseDuration(s string, emptyIsZero bool, hint string) (time.Duration, error) {
	if s == "" && emptyIsZero {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, nil
	}
	if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
		return 0, fmt.Errorf("%q has no unit; %s", s, hint)
	}
	return 0, fmt.Errorf("%q is not a duration; %s", s, hint)
}

func checkDuration(d, least time.Duration) error {
	switch {
	case d < 0 && least == 0:
		return fmt.Errorf("%s is negative; use a positive duration such as \"2h\", or \"0\" to disable", formatDuration(d))
	case d < least:
		return fmt.Errorf("%s is too short; use at least %q", formatDuration(d), formatDuration(least))
	}
	return nil
}

// formatDuration drops the zero units time.Duration.String adds, so "2h"
// stays "2h" rather than becoming "2h0m0s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var levelNames = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func setLogLevel(c *Config, v any) error {
	l, ok := levelNames[v.(string)]
	if !ok {
		return choiceError(v.(string), "log level", "debug", "info", "warn", "error")
	}
	c.LogLevel = l
	return nil
}

func checkLogLevel(l slog.Level) error {
	if _, ok := levelNames[levelName(l)]; !ok {
		return fmt.Errorf("level %s is not one of debug, info, warn, error", l)
	}
	return nil
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }
