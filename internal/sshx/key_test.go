package sshx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestEnsureKeyCreatesOnceWithPrivateMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssh", "id_ed25519")
	pub1, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key mode = %o, want 600", got)
	}
	if pub1.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want ed25519", pub1.Type())
	}
	pubFile, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pubFile, ssh.MarshalAuthorizedKey(pub1)) {
		t.Errorf(".pub = %q, want %q", pubFile, ssh.MarshalAuthorizedKey(pub1))
	}
	os.Chmod(path, 0o644)
	pub2, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub1.Marshal(), pub2.Marshal()) {
		t.Error("second EnsureKey returned a different key; it must reuse the existing one")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("loose key mode not tightened: %o", fi.Mode().Perm())
	}
}

func TestEnsureKeyRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id")
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := EnsureKey(path); err == nil {
		t.Fatal("EnsureKey on garbage succeeded; want an error naming the file")
	}
}

func TestKnownHostsPinReplacesAndForgets(t *testing.T) {
	k := &KnownHosts{Path: filepath.Join(t.TempDir(), "ssh", "known_hosts")}
	if err := k.Pin("a", "172.16.0.2", []string{"ssh-ed25519 AAAA1 root@a"}); err != nil {
		t.Fatal(err)
	}
	if err := k.Pin("b", "172.16.0.3", []string{"ssh-ed25519 BBBB"}); err != nil {
		t.Fatal(err)
	}
	if err := k.Pin("a", "172.16.0.2", []string{"ssh-ed25519 AAAA2", "ecdsa-sha2-nistp256 CCCC"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(k.Path)
	want := "b.vm,172.16.0.3 ssh-ed25519 BBBB\na.vm,172.16.0.2 ssh-ed25519 AAAA2\na.vm,172.16.0.2 ecdsa-sha2-nistp256 CCCC\n"
	if string(got) != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", got, want)
	}
	if err := k.Forget("a"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(k.Path)
	if string(got) != "b.vm,172.16.0.3 ssh-ed25519 BBBB\n" {
		t.Errorf("after Forget: %q", got)
	}
	if fi, _ := os.Stat(k.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}
