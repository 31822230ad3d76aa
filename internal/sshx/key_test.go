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
