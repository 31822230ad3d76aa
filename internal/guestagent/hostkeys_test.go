package guestagent

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// keyedOpenSSH is an OpenSSH whose SSHDir holds the keys an image made:
// ed25519, ECDSA and RSA, plus a certificate for the RSA key. Its first
// boot is over (the keys are this disk's own), so configuring it keeps
// them.
func keyedOpenSSH(t *testing.T) (*OpenSSH, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	p := Paths{StateDir: filepath.Join(root, "var/lib/banger"), SSHDir: filepath.Join(root, "etc/ssh")}
	os.MkdirAll(p.StateDir, 0o700)
	os.WriteFile(filepath.Join(p.StateDir, "ssh-host-keys-generated"), nil, 0o600)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, err1 := newEd25519HostKey("ssh_host_ed25519_key")
	ec, _, err2 := newECDSAHostKey("ssh_host_ecdsa_key")
	rs, _, err3 := newHostKey("ssh_host_rsa_key", rsaKey)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(p.SSHDir, 0o755)
	old := map[string][]byte{}
	for _, k := range []hostKey{ed, ec, rs} {
		old[k.name], old[k.name+".pub"] = k.private, k.public
	}
	old["ssh_host_rsa_key-cert.pub"] = []byte("ssh-rsa-cert-v01@openssh.com AAAA a certificate of the old key\n")
	for name, data := range old {
		if err := os.WriteFile(filepath.Join(p.SSHDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil)
	if err != nil {
		t.Fatal(err)
	}
	o.pidFile = filepath.Join(root, "no-sshd.pid")
	return o, old
}

// checkKeyDir fails unless every private host key in dir has either no
// .pub or the .pub of that key, at least one private key is there, and
// HostKeys reports exactly the public halves of the private keys.
func checkKeyDir(t *testing.T, o *OpenSSH, when string) {
	t.Helper()
	var want []string
	for _, typ := range hostKeyTypes {
		priv := filepath.Join(o.paths.SSHDir, "ssh_host_"+typ+"_key")
		data, err := os.ReadFile(priv)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			t.Fatalf("%s: %s is not a whole private key: %v", when, priv, err)
		}
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		want = append(want, line)
		pub, err := os.ReadFile(priv + ".pub")
		if f := strings.Fields(string(pub)); err == nil && (len(f) < 2 || f[0]+" "+f[1] != line) {
			t.Fatalf("%s: %s.pub does not match its private key", when, priv)
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s: the guest has no host key", when)
	}
	hk, err := o.HostKeys()
	if err != nil || !slices.Equal(hk.Keys, want) {
		t.Fatalf("%s: HostKeys = %q, %v; want the private keys' %q", when, hk.Keys, err, want)
	}
}

// keyFiles lists dir's entries but sshd_config.
func keyFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "sshd_config" {
			names = append(names, e.Name())
		}
	}
	return names
}

func checkUnchanged(t *testing.T, dir string, old map[string][]byte) {
	t.Helper()
	var want []string
	for name, data := range old {
		want = append(want, name)
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	slices.Sort(want)
	if got := keyFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("files after a failed rotation = %q, want the old ones %q (no temporary file left)", got, want)
	}
}

// TestOpenSSHRotateHostKeysWriteFailureKeepsOldKeys: a rotation whose
// second key cannot be written (the disk fills half way through its
// private key file) fails naming that key, and leaves every old key file
// as it was, with no new or temporary file beside them.
func TestOpenSSHRotateHostKeysWriteFailureKeepsOldKeys(t *testing.T) {
	o, old := keyedOpenSSH(t)
	before, _ := o.HostKeys()
	calls := 0
	o.keys.write = func(path string, data []byte, perm os.FileMode) error {
		calls++
		if calls == 3 { // the ECDSA private key, after both ed25519 files
			os.WriteFile(path, data[:len(data)/2], perm)
			return fmt.Errorf("write %s: no space left on device", path)
		}
		return writeFileSynced(path, data, perm)
	}
	_, err := o.RotateHostKeys()
	if err == nil || !strings.Contains(err.Error(), "ssh_host_ecdsa_key") || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "unchanged") {
		t.Fatalf("RotateHostKeys = %v; want an error naming the ECDSA key, the cause and that the old keys are unchanged", err)
	}
	checkUnchanged(t, o.paths.SSHDir, old)
	checkKeyDir(t, o, "after a failed rotation")
	if after, _ := o.HostKeys(); !slices.Equal(after.Keys, before.Keys) {
		t.Errorf("HostKeys after a failed rotation = %q, want the old %q", after.Keys, before.Keys)
	}
}

// TestOpenSSHRotateHostKeysBlockedTempKeepsOldKeys: the same with a real
// failure, a directory where the second key's new file would go.
func TestOpenSSHRotateHostKeysBlockedTempKeepsOldKeys(t *testing.T) {
	o, old := keyedOpenSSH(t)
	block := filepath.Join(o.paths.SSHDir, ".ssh_host_ecdsa_key"+tempSuffix)
	if err := os.MkdirAll(filepath.Join(block, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := o.RotateHostKeys(); err == nil || !strings.Contains(err.Error(), "ssh_host_ecdsa_key") {
		t.Fatalf("RotateHostKeys = %v; want an error naming the ECDSA key", err)
	}
	os.RemoveAll(block)
	checkUnchanged(t, o.paths.SSHDir, old)
	checkKeyDir(t, o, "after a failed rotation")
}

// TestOpenSSHRotateHostKeysNeverLeavesTheGuestKeyless: at every change a
// rotation makes to the key directory, and after the agent is killed at
// any of them, each key type there is a whole private key with its own
// .pub or none, there is at least one, and HostKeys (what the host pins)
// reports what sshd would offer. The next rotation, after such a crash,
// succeeds and removes what the crash left.
func TestOpenSSHRotateHostKeysNeverLeavesTheGuestKeyless(t *testing.T) {
	o, _ := keyedOpenSSH(t)
	var steps []string
	o.keys.step = func(what string) {
		steps = append(steps, what)
		checkKeyDir(t, o, "before "+what)
	}
	if _, err := o.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	o.keys.step = nil
	checkKeyDir(t, o, "after the rotation")
	if len(steps) < 8 {
		t.Fatalf("steps = %q; want the swap of two keys and the removal of RSA", steps)
	}

	type crash struct{ at string }
	for i, at := range steps {
		t.Run(fmt.Sprintf("killed before %d", i), func(t *testing.T) {
			o, _ := keyedOpenSSH(t)
			n := 0
			o.keys.step = func(string) {
				if n == i {
					panic(crash{at})
				}
				n++
			}
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatalf("the rotation did not reach step %d (%s)", i, at)
					} else if _, ok := r.(crash); !ok {
						panic(r)
					}
				}()
				o.RotateHostKeys()
			}()
			o.keys.step = nil
			checkKeyDir(t, o, "killed before "+at)
			if _, err := o.RotateHostKeys(); err != nil {
				t.Fatalf("the rotation after the crash: %v", err)
			}
			checkKeyDir(t, o, "after the next rotation")
			want := []string{"ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}
			if got := keyFiles(t, o.paths.SSHDir); !slices.Equal(got, want) {
				t.Errorf("files after the next rotation = %q, want %q", got, want)
			}
		})
	}
}

// TestOpenSSHRotateHostKeysReplacesAndDropsRSA: a rotation replaces the
// ed25519 and ECDSA keys with new ones (modes 0600 and 0644), removes the
// RSA key and its certificate, and what an interrupted earlier rotation
// left, and nothing else is left in the directory.
func TestOpenSSHRotateHostKeysReplacesAndDropsRSA(t *testing.T) {
	o, old := keyedOpenSSH(t)
	left := filepath.Join(o.paths.SSHDir, ".ssh_host_ed25519_key"+tempSuffix)
	os.WriteFile(left, []byte("half a key"), 0o600)
	before, _ := o.HostKeys()
	after, err := o.RotateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}
	if got := keyFiles(t, o.paths.SSHDir); !slices.Equal(got, want) {
		t.Errorf("files after rotation = %q, want %q", got, want)
	}
	checkKeyDir(t, o, "after the rotation")
	if len(after.Keys) != 2 || !strings.HasPrefix(after.Keys[0], "ssh-ed25519 ") || !strings.HasPrefix(after.Keys[1], "ecdsa-sha2-nistp256 ") {
		t.Fatalf("host keys = %q, want ed25519 and ECDSA", after.Keys)
	}
	for _, k := range after.Keys {
		if slices.Contains(before.Keys, k) {
			t.Errorf("key kept through rotation: %s", k)
		}
	}
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(o.paths.SSHDir, name))
		wantMode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pub") {
			wantMode = 0o644
		}
		if err != nil || fi.Mode().Perm() != wantMode {
			t.Errorf("%s: %v, mode %v; want %v", name, err, fi.Mode().Perm(), wantMode)
		}
		if bytes.Equal(old[name], mustRead(t, filepath.Join(o.paths.SSHDir, name))) {
			t.Errorf("%s was not replaced", name)
		}
	}
}

// TestBuiltinRotateHostKeysWriteFailureKeepsKey: the builtin server's
// rotation, failing on the new key's .pub, keeps its old key on disk and
// in use, with no temporary file left; a rotation that succeeds replaces
// both files with a matching pair.
func TestBuiltinRotateHostKeysWriteFailureKeepsKey(t *testing.T) {
	p := Paths{StateDir: filepath.Join(t.TempDir(), "state")}
	s, err := NewSSHServer(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p.StateDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state directory made for the key: %v, %v; want mode 0700", fi, err)
	}
	priv := filepath.Join(p.StateDir, builtinHostKey)
	oldPriv, oldPub := mustRead(t, priv), mustRead(t, priv+".pub")
	before, _ := s.HostKeys()
	s.keys.write = func(path string, data []byte, perm os.FileMode) error {
		if strings.HasSuffix(path, ".pub"+tempSuffix) {
			return errors.New("input/output error")
		}
		return writeFileSynced(path, data, perm)
	}
	if _, err := s.RotateHostKeys(); err == nil || !strings.Contains(err.Error(), builtinHostKey+".pub") {
		t.Fatalf("RotateHostKeys = %v; want an error naming the .pub", err)
	}
	if !bytes.Equal(mustRead(t, priv), oldPriv) || !bytes.Equal(mustRead(t, priv+".pub"), oldPub) {
		t.Error("a failed rotation changed the key files")
	}
	if got := keyFiles(t, p.StateDir); !slices.Equal(got, []string{builtinHostKey, builtinHostKey + ".pub"}) {
		t.Errorf("files after a failed rotation = %q", got)
	}
	if after, _ := s.HostKeys(); !slices.Equal(after.Keys, before.Keys) {
		t.Errorf("the server's key after a failed rotation = %q, want the old %q", after.Keys, before.Keys)
	}

	s.keys.write = writeFileSynced
	after, err := s.RotateHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(mustRead(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if after.Keys[0] != line || strings.TrimSpace(string(mustRead(t, priv+".pub"))) != line || slices.Equal(after.Keys, before.Keys) {
		t.Errorf("after rotation: served %q, file %q, .pub %q; want one new key", after.Keys, line, mustRead(t, priv+".pub"))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConfigureOpenSSHFirstBootReplacesImageKeys: on a disk's first boot
// the image's keys (every clone shares them) are replaced by the ones
// ssh-keygen -A makes, or by an ed25519 key alone without ssh-keygen; the
// image's other types go, and no staging directory or temporary file is
// left.
func TestConfigureOpenSSHFirstBootReplacesImageKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string // PATH while configuring; "" keeps it
		want []string
	}{
		{"ssh-keygen", "", []string{"ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "ssh_host_rsa_key.pub"}},
		{"no ssh-keygen", t.TempDir(), []string{"ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				if _, err := exec.LookPath("ssh-keygen"); err != nil {
					t.Skip("needs ssh-keygen: ", err)
				}
			} else {
				t.Setenv("PATH", tc.path)
			}
			root := t.TempDir()
			p := Paths{StateDir: filepath.Join(root, "state"), SSHDir: filepath.Join(root, "ssh")}
			os.MkdirAll(p.SSHDir, 0o755)
			image, _, err := newEd25519HostKey("ssh_host_ed25519_key")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(p.SSHDir, image.name), image.private, 0o600)
			os.WriteFile(filepath.Join(p.SSHDir, image.name+".pub"), image.public, 0o644)
			os.WriteFile(filepath.Join(p.SSHDir, "ssh_host_dsa_key.pub"), []byte("ssh-dss AAAA image\n"), 0o644)
			o, err := ConfigureOpenSSH(p, "/usr/sbin/sshd", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := keyFiles(t, p.SSHDir); !slices.Equal(got, tc.want) {
				t.Errorf("files after the first boot = %q, want %q", got, tc.want)
			}
			checkKeyDir(t, o, "after the first boot")
			if hk, _ := o.HostKeys(); slices.Contains(hk.Keys, strings.TrimSpace(string(image.public))) {
				t.Error("the image's key survived the first boot")
			}
		})
	}
}

// BenchmarkRotateHostKeys compares a rotation (new keys written aside,
// fsynced, swapped in, the directory fsynced) with what it replaced:
// delete every key, then write each new file through writeFileAtomic,
// with no fsync. Run both in one go and read the ratio.
func BenchmarkRotateHostKeys(b *testing.B) {
	b.Run("swap-fsync", func(b *testing.B) {
		dir := b.TempDir()
		o := &OpenSSH{paths: Paths{SSHDir: dir}, keys: newHostKeyDir(dir, 0o755), pidFile: filepath.Join(dir, "none.pid")}
		for b.Loop() {
			if _, err := o.RotateHostKeys(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("delete-then-write", func(b *testing.B) {
		dir := b.TempDir()
		for b.Loop() {
			old, _ := filepath.Glob(filepath.Join(dir, "ssh_host_*_key*"))
			for _, f := range old {
				os.Remove(f)
			}
			ed, _, err1 := newEd25519HostKey("ssh_host_ed25519_key")
			ec, _, err2 := newECDSAHostKey("ssh_host_ecdsa_key")
			if err := errors.Join(err1, err2); err != nil {
				b.Fatal(err)
			}
			for _, k := range []hostKey{ed, ec} {
				err1 := writeFileAtomic(filepath.Join(dir, k.name), k.private, 0o600)
				err2 := writeFileAtomic(filepath.Join(dir, k.name+".pub"), k.public, 0o644)
				if err := errors.Join(err1, err2); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestOpenSSHRotateHostKeysUntidyStillReloads: once the new keys are in
// place, a failure to remove an old key type does not fail the rotation:
// sshd is told to load the new keys (they are the ones on disk) and the
// new keys are reported for the host to pin.
func TestOpenSSHRotateHostKeysUntidyStillReloads(t *testing.T) {
	o, _ := keyedOpenSSH(t)
	// A directory where a key type that is not made again sits: removing
	// it fails, even for root.
	stuck := filepath.Join(o.paths.SSHDir, "ssh_host_dsa_key")
	if err := os.MkdirAll(filepath.Join(stuck, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// This test process stands in for sshd.
	o.running.Store(int64(os.Getpid()))
	after, err := o.RotateHostKeys()
	if err != nil {
		t.Fatalf("rotation = %v; want success with the new keys in place", err)
	}
	select {
	case <-hup:
	case <-time.After(10 * time.Second):
		t.Fatal("sshd was not told to load the new keys")
	}
	checkKeyDir(t, o, "after an untidy rotation")
	if len(after.Keys) != 2 {
		t.Errorf("host keys = %q, want the new ed25519 and ECDSA keys", after.Keys)
	}
}
