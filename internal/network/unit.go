package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// UnitName is the systemd unit that re-creates the network at boot.
const UnitName = "banger-network.service"

// Units installs and removes system units.
type Units interface {
	// Available reports whether systemd manages this host.
	Available() bool
	// Check reports whether unit name holds content and is enabled.
	Check(name, content string) (bool, error)
	// Install writes unit name and enables it.
	Install(name, content string) error
	// Remove stops, disables and deletes unit name, reporting whether it
	// existed.
	Remove(name string) (bool, error)
	// Restart (re)starts unit name now.
	Restart(name string) error
}

// unitContent is the boot unit running exe. It orders itself after
// systemd-resolved so the *.vm routing it applies sticks.
func unitContent(exe string, spec Spec) string {
	return fmt.Sprintf(`# Written by 'banger system setup'; 'banger system teardown' removes it.
[Unit]
Description=banger guest network (bridge %s, %d taps, NAT, *.vm DNS routing)
Wants=network-pre.target
After=network-pre.target systemd-resolved.service
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%s system setup --boot

[Install]
WantedBy=multi-user.target
`, spec.Bridge, spec.Taps, systemdQuote(exe))
}

// EgressUnitName is the systemd unit running the egress helper.
const EgressUnitName = "banger-egress.service"

// egressHelperCommand runs the helper for spec's user.
func egressHelperCommand(spec Spec) string {
	return fmt.Sprintf(`sudo "$(command -v banger)" system egress-helper --user %d`, spec.UID)
}

// egressUnitContent runs exe's egress helper for spec's user, restarted
// whenever it stops. It needs CAP_NET_ADMIN for the tables and CAP_CHOWN
// to give the user its socket; nothing else.
func egressUnitContent(exe string, spec Spec) string {
	return fmt.Sprintf(`# Written by 'banger system setup'; 'banger system teardown' removes it.
[Unit]
Description=banger egress helper for uid %d (keeps its VMs' network policies in nftables)
Wants=%s
After=%s

[Service]
ExecStart=%s system egress-helper --user %d
Restart=always
RestartSec=2
NoNewPrivileges=yes
CapabilityBoundingSet=CAP_NET_ADMIN CAP_CHOWN
ProtectSystem=full

[Install]
WantedBy=multi-user.target
`, spec.UID, UnitName, UnitName, systemdQuote(exe), spec.UID)
}

// systemdQuote quotes a path for ExecStart when it needs it.
func systemdQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\%$;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

// HostUnits manages units in /etc/systemd/system with systemctl.
func HostUnits() Units { return systemdUnits{dir: "/etc/systemd/system"} }

type systemdUnits struct{ dir string }

func (systemdUnits) Available() bool {
	_, err := os.Stat("/run/systemd/system") // what sd_booted checks
	return err == nil
}

func (u systemdUnits) Check(name, content string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(u.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading unit %s: %w", name, err)
	}
	_, err = os.Lstat(filepath.Join(u.dir, "multi-user.target.wants", name))
	return bytes.Equal(b, []byte(content)) && err == nil, nil
}

func (u systemdUnits) Install(name, content string) error {
	if err := os.WriteFile(filepath.Join(u.dir, name), []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing unit %s: %w", name, err)
	}
	if err := systemctl("daemon-reload"); err != nil {
		return err
	}
	return systemctl("enable", name)
}

func (u systemdUnits) Remove(name string) (bool, error) {
	path := filepath.Join(u.dir, name)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := systemctl("disable", "--now", name); err != nil {
		return true, err
	}
	if err := os.Remove(path); err != nil {
		return true, fmt.Errorf("removing unit %s: %w", name, err)
	}
	return true, systemctl("daemon-reload")
}

func (systemdUnits) Restart(name string) error { return systemctl("restart", name) }

func systemctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("running systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
