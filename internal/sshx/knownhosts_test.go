package sshx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFollowsPins: the ssh_config snippet gives each pinned VM a
// block with its address as pins come, move and go, and OpenSSH reads it
// as meaning that address with the pinned name's host key.
func TestConfigFollowsPins(t *testing.T) {
	dir := t.TempDir()
	k := &KnownHosts{Path: filepath.Join(dir, "known_hosts"), Config: filepath.Join(dir, "config"), Key: filepath.Join(dir, "id_ed25519")}
	key := []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5o0cfkVdK2ZHo3lJ1sVXaQmYH6D2kpcXb2t5wqPmTm"}
	if err := k.WriteConfig(); err != nil {
		t.Fatal(err)
	}
	if cfg := read(t, k.Config); strings.Contains(cfg, "HostName") || !strings.Contains(cfg, "Host *.vm") {
		t.Errorf("config without VMs:\n%s", cfg)
	}
	must(t, k.Pin("dev", "172.16.0.2", key))
	must(t, k.Pin("api", "172.16.0.3", key))
	must(t, k.Pin("dev", "172.16.0.9", key)) // restarted on another address
	cfg := read(t, k.Config)
	for _, want := range []string{"Host dev.vm\n\tHostName 172.16.0.9\n\tHostKeyAlias dev.vm\n", "Host api.vm\n\tHostName 172.16.0.3\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "172.16.0.2") {
		t.Errorf("config keeps dev's old address:\n%s", cfg)
	}
	if ssh, err := exec.LookPath("ssh"); err == nil {
		out, err := exec.Command(ssh, "-G", "-F", k.Config, "dev.vm").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G: %v\n%s", err, out)
		}
		for _, want := range []string{"hostname 172.16.0.9\n", "hostkeyalias dev.vm\n", "user root\n", "stricthostkeychecking true\n", "userknownhostsfile " + k.Path} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ssh -G dev.vm lacks %q:\n%s", want, out)
			}
		}
	}
	must(t, k.Forget("dev"))
	if cfg := read(t, k.Config); strings.Contains(cfg, "dev.vm") || !strings.Contains(cfg, "Host api.vm") {
		t.Errorf("config after forgetting dev:\n%s", cfg)
	}
}

// TestPinnedHostsSkipsWhatIsNotAVM: a line that is not NAME.vm,ADDRESS
// (hand edits, an injected name) never reaches the config.
func TestPinnedHostsSkipsWhatIsNotAVM(t *testing.T) {
	data := "dev.vm,172.16.0.2 ssh-ed25519 AAAA\n" +
		"evil\nHost *.vm,1.2.3.4 ssh-ed25519 AAAA\n" +
		"x.vm,not-an-ip ssh-ed25519 AAAA\n" +
		"Bad_Name.vm,172.16.0.4 ssh-ed25519 AAAA\n" +
		"other.example,172.16.0.5 ssh-ed25519 AAAA\n" +
		"dev.vm,172.16.0.2 ssh-rsa AAAA\n"
	got := pinnedHosts([]byte(data))
	if len(got) != 1 || got[0].Name != "dev" || got[0].Addr.String() != "172.16.0.2" {
		t.Errorf("pinnedHosts = %+v; want only dev at 172.16.0.2", got)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
