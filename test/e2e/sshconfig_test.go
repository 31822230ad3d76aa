//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSSHNameWithoutDNS: with the README's Include line, plain
// 'ssh NAME.vm' reaches the VM from a namespace whose resolver knows
// nothing of banger (no systemd-resolved, no *.vm routing): the config
// banger writes carries each VM's address; host keys stay pinned.
func TestSSHNameWithoutDNS(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "dev", "--image", "bb")

	inNS := func(timeout time.Duration, name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.ns.Name, name}, args...)...)
		cmd.Env = e.vars
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := inNS(30*time.Second, "getent", "hosts", "dev.vm"); err == nil {
		t.Fatalf("dev.vm resolves in the test namespace (%q): the test would not show that ssh needs no DNS", out)
	}

	bangerConfig := filepath.Join(e.home, "config", "banger", "ssh", "config")
	userConfig := filepath.Join(e.home, "ssh_config")
	if err := os.WriteFile(userConfig, []byte("Include "+bangerConfig+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := inNS(2*time.Minute, "ssh", "-F", userConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=60", "dev.vm", "echo", "reached", "$(hostname)")
	if err != nil || strings.TrimSpace(out) != "reached dev" {
		cfg, _ := os.ReadFile(bangerConfig)
		t.Fatalf("ssh -F %s dev.vm: %v\n%s\nbanger's ssh config:\n%s", userConfig, err, out, cfg)
	}

	// Deleting the VM removes its block.
	e.ok("vm", "delete", "--force", "dev")
	if cfg, _ := os.ReadFile(bangerConfig); strings.Contains(string(cfg), "dev.vm") {
		t.Errorf("banger's ssh config still names dev.vm after delete:\n%s", cfg)
	}
}
