// Package sshx handles banger's host-side SSH material: the user's key
// for reaching guests.
package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// EnsureKey returns the public key for the private key at path, creating
// an ed25519 key pair (path mode 0600, path.pub 0644) when none exists.
// An existing key is never overwritten; a key with loose permissions is
// tightened to 0600 because ssh refuses to use it otherwise.
func EnsureKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading ssh key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parsing ssh key %s: %w (banger needs an unencrypted private key; set ssh_key_path to another key or remove this one)", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("restricting %s to 0600: %w", path, err)
		}
	}
	return signer.PublicKey(), nil
}

func createKey(path string) (ssh.PublicKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "banger")
	if err != nil {
		return nil, fmt.Errorf("encoding ssh key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// O_EXCL: two processes racing to create the key must not clobber
	// each other's half-written file.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return EnsureKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("creating ssh key %s: %w", path, err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("writing ssh key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing ssh key %s: %w", path, err)
	}
	line := ssh.MarshalAuthorizedKey(sshPub)
	if err := os.WriteFile(path+".pub", line, 0o644); err != nil {
		return nil, fmt.Errorf("writing %s.pub: %w", path, err)
	}
	return sshPub, nil
}
