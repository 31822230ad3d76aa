package guestagent

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestConfigureOpenSSHRegeneratesKeysOnceAndDisablesPasswords(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("needs ssh-keygen: ", err)
	}
	root := t.TempDir()
	p := Paths{StateDir: filepath.Join(root, "var/lib/banger"), SSHDir: filepath.Join(root, "etc/ssh")}
	os.MkdirAll(p.SSHDir, 0o755)
	imageKey := filepath.Join(p.SSHDir, "ssh_host_ed25519_key.pub")
	os.WriteFile(imageKey, []byte("ssh-ed25519 AAAAimage-key shared-by-every-clone\n"), 0o644)
	os.WriteFile(filepath.Join(p.SSHDir, "sshd_config"), []byte("Port 22\nPasswordAuthentication yes\n"), 0o644)

	o, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := o.HostKeys()
	if err != nil || len(hk.Keys) == 0 || !strings.HasPrefix(hk.Keys[0], "ssh-ed25519 ") || strings.Contains(hk.Keys[0], "image-key") {
		t.Fatalf("host keys = %+v, %v; want a fresh ed25519 key first", hk, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(p.SSHDir, "sshd_config"))
	if !strings.HasPrefix(string(cfg), blockBegin) || !strings.Contains(string(cfg), "PasswordAuthentication no") {
		t.Errorf("sshd_config = %q, want the banger block first", cfg)
	}

	// A second start (same disk) keeps the keys and does not stack blocks.
	o2, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil)
	if err != nil {
		t.Fatal(err)
	}
	if hk2, _ := o2.HostKeys(); hk2.Keys[0] != hk.Keys[0] {
		t.Error("host key changed on a second start")
	}
	cfg2, _ := os.ReadFile(filepath.Join(p.SSHDir, "sshd_config"))
	if string(cfg2) != string(cfg) {
		t.Errorf("second configure changed sshd_config:\n%s", cfg2)
	}
	if _, err := os.Stat("/run/sshd"); err == nil {
		// sshd -t validates the result when its privsep directory exists.
		out, err := exec.Command("/usr/sbin/sshd", "-t", "-f", filepath.Join(p.SSHDir, "sshd_config"),
			"-h", filepath.Join(p.SSHDir, "ssh_host_ed25519_key")).CombinedOutput()
		if err != nil {
			t.Errorf("sshd -t: %v: %s", err, out)
		}
	}
}

func TestConfigureOpenSSHUsesDropInDirectory(t *testing.T) {
	root := t.TempDir()
	p := Paths{StateDir: filepath.Join(root, "state"), SSHDir: filepath.Join(root, "etc/ssh")}
	os.MkdirAll(p.SSHDir, 0o755)
	os.MkdirAll(p.StateDir, 0o700)
	os.WriteFile(filepath.Join(p.StateDir, "ssh-host-keys-generated"), nil, 0o600)
	main := "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n"
	os.WriteFile(filepath.Join(p.SSHDir, "sshd_config"), []byte(main), 0o644)
	if _, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(p.SSHDir, "sshd_config")); string(got) != main {
		t.Errorf("sshd_config was changed: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(p.SSHDir, "sshd_config.d", "00-banger.conf")); string(got) != sshdSettings {
		t.Errorf("drop-in = %q", got)
	}
}

// TestOpenSSHRotateHostKeysSignalsSSHD: rotation replaces every host key
// and sends SIGHUP to the sshd named in the PID file (sshd re-executes on
// it and loads the new keys), and to nothing else. The stand-in sshd is
// sleep started through a link named sshd, which is what /proc/PID/comm
// shows; it dies of the SIGHUP a real sshd would re-execute on.
func TestOpenSSHRotateHostKeysSignalsSSHD(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("needs ssh-keygen: ", err)
	}
	root := t.TempDir()
	p := Paths{StateDir: filepath.Join(root, "var/lib/banger"), SSHDir: filepath.Join(root, "etc/ssh")}
	o, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := o.HostKeys()

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep: ", err)
	}
	// A test run under nohup ignores SIGHUP, and its children would
	// inherit that; a handled signal is reset to its default at exec.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	start := func(name string) *exec.Cmd {
		link := filepath.Join(t.TempDir(), name)
		if err := os.Symlink(sleep, link); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(link, "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	// A PID file naming something that is not sshd is left alone.
	other := start("not-sshd")
	o.pidFile = filepath.Join(root, "sshd.pid")
	os.WriteFile(o.pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644)
	if _, err := o.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	if other.ProcessState != nil || processExited(other.Process.Pid) {
		t.Fatal("a process that is not sshd was signalled")
	}

	sshd := start("sshd")
	os.WriteFile(o.pidFile, []byte(strconv.Itoa(sshd.Process.Pid)+"\n"), 0o644)
	after, err := o.RotateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	err = sshd.Wait()
	if ws, ok := sshd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Errorf("the stand-in sshd ended with %v, want SIGHUP", err)
	}
	if len(after.Keys) != 2 || !strings.HasPrefix(after.Keys[0], "ssh-ed25519 ") || !strings.HasPrefix(after.Keys[1], "ecdsa-sha2-nistp256 ") {
		t.Fatalf("host keys after rotation = %q, want a new ed25519 and ECDSA key", after.Keys)
	}
	for _, k := range after.Keys {
		for _, b := range before.Keys {
			if k == b {
				t.Errorf("host key kept through rotation: %s", k)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(p.SSHDir, "ssh_host_rsa_key")); !os.IsNotExist(err) {
		t.Errorf("the parent's RSA host key is still there: %v", err)
	}
	// OpenSSH reads the keys the agent wrote: -y prints the public half.
	for i, name := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} {
		out, err := exec.Command("ssh-keygen", "-y", "-f", filepath.Join(p.SSHDir, name)).Output()
		if err != nil || strings.Fields(string(out))[1] != strings.Fields(after.Keys[i])[1] {
			t.Errorf("ssh-keygen -y -f %s: %v %q, want %s", name, err, out, after.Keys[i])
		}
	}
}

func processExited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z ")
}
