package guestagent

import (
	"banger/internal/fsutil"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// hostKey is a host key to install: its file name (ssh_host_ed25519_key)
// and the contents of that file and of its .pub.
type hostKey struct {
	name    string
	private []byte
	public  []byte
}

// newHostKey encodes priv as the host key file name, in OpenSSH's format.
func newHostKey(name string, priv crypto.Signer) (hostKey, ssh.Signer, error) {
	block, err := ssh.MarshalPrivateKey(priv, "banger guest host key")
	if err != nil {
		return hostKey{}, nil, fmt.Errorf("encoding host key %s: %w", name, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return hostKey{}, nil, fmt.Errorf("encoding host key %s: %w", name, err)
	}
	return hostKey{name: name, private: pem.EncodeToMemory(block), public: ssh.MarshalAuthorizedKey(signer.PublicKey())}, signer, nil
}

// newEd25519HostKey and newECDSAHostKey make the two keys a rotation makes
// (ECDSA on P-256, as ssh-keygen -A makes it).
func newEd25519HostKey(name string) (hostKey, ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return hostKey{}, nil, fmt.Errorf("generating host key %s: %w", name, err)
	}
	return newHostKey(name, priv)
}

func newECDSAHostKey(name string) (hostKey, ssh.Signer, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return hostKey{}, nil, fmt.Errorf("generating host key %s: %w", name, err)
	}
	return newHostKey(name, priv)
}

// tempSuffix ends the temporary names of new key files. They also start
// with a dot, so no ssh_host_* pattern (ours, a distribution's, sshd's
// HostKey lines) ever takes one for a key.
const tempSuffix = ".banger-new"

// hostKeyDir replaces the host keys in one directory so that neither a
// failure nor the agent killed at any point leaves the guest without a
// host key, with a half-written key file, or with a .pub that does not
// match its private key:
//
//  1. every new file is written under a temporary name in the directory
//     and fsynced; a failure here removes them and changes nothing;
//  2. each key is then switched whole: its old .pub is removed, the new
//     private key renamed over the old one, the new .pub renamed into
//     place; then the directory is fsynced;
//  3. only then, and if asked, are the other keys (types no longer made,
//     such as RSA and DSA, and certificates) removed, each .pub before its
//     private key.
//
// Why this order: sshd reads the private key and its .pub; a current sshd
// logs a .pub that does not match and uses the private key alone, and a
// release that does not check may offer the .pub's key while signing with
// the private one, which breaks that key type. Every reader (sshd, HostKeys, hence the host's pinning) derives
// the public key from the private one when the .pub is missing. So the
// .pub is absent rather than stale while its private key changes, and at
// every moment each key type that exists has a private key and either no
// .pub or the .pub that matches it. A crash in step 2 leaves some types
// new and the rest old, each whole; the next install removes the
// temporary files it left.
type hostKeyDir struct {
	dir string
	// perm is the directory's mode if install has to create it.
	perm os.FileMode
	// write creates path with data and perm and fsyncs it.
	write func(path string, data []byte, perm os.FileMode) error
	// step, when set, is called before each change to the existing key
	// files: tests observe the directory there, or stop as a crash would.
	step func(what string)
}

func newHostKeyDir(dir string, perm os.FileMode) hostKeyDir {
	return hostKeyDir{dir: dir, perm: perm, write: writeFileSynced}
}

// install puts keys in place of the keys of the same names and, with
// dropOthers, removes every other ssh_host_*_key* file afterwards. err
// means the new keys are not all in place (the error says which are);
// untidy is a failure after they all are (syncing the directory,
// removing other key types), which the caller logs and goes on: the new
// keys are the ones on disk, so sshd must load them and the host pin
// them.
func (d hostKeyDir) install(keys []hostKey, dropOthers bool) (untidy, err error) {
	if err := os.MkdirAll(d.dir, d.perm); err != nil {
		return nil, fmt.Errorf("creating %s: %w", d.dir, err)
	}
	d.removeTemps()
	var written []string
	undo := func() {
		for _, f := range written {
			os.Remove(f)
		}
	}
	for _, k := range keys {
		for _, f := range []struct {
			name string
			data []byte
			perm os.FileMode
		}{{k.name, k.private, 0o600}, {k.name + ".pub", k.public, 0o644}} {
			tmp := d.temp(f.name)
			if err := d.write(tmp, f.data, f.perm); err != nil {
				os.Remove(tmp)
				undo()
				return nil, fmt.Errorf("writing the new host key %s: %w; the old host keys are unchanged", filepath.Join(d.dir, f.name), err)
			}
			written = append(written, tmp)
		}
	}
	for i, k := range keys {
		if err := d.swap(k.name); err != nil {
			undo()
			return nil, fmt.Errorf("%w; %d of %d new host keys are in place, the others unchanged, each with its own .pub or none", err, i, len(keys))
		}
	}
	untidy = fsutil.SyncDir(d.dir)
	if dropOthers {
		untidy = errors.Join(untidy, d.dropExcept(keys))
	}
	return untidy, nil
}

// swap switches one key: its .pub goes, the new private key replaces the
// old, the new .pub comes.
func (d hostKeyDir) swap(name string) error {
	priv := filepath.Join(d.dir, name)
	d.at("remove " + priv + ".pub")
	if err := os.Remove(priv + ".pub"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replacing host key %s: %w", priv, err)
	}
	d.at("rename " + priv)
	if err := os.Rename(d.temp(name), priv); err != nil {
		return fmt.Errorf("replacing host key %s: %w", priv, err)
	}
	d.at("rename " + priv + ".pub")
	if err := os.Rename(d.temp(name+".pub"), priv+".pub"); err != nil {
		return fmt.Errorf("replacing host key %s.pub: %w", priv, err)
	}
	return nil
}

// dropExcept removes every ssh_host_*_key* file that is not one of keys:
// public halves and certificates first, then the private keys.
func (d hostKeyDir) dropExcept(keys []hostKey) error {
	old, _ := filepath.Glob(filepath.Join(d.dir, "ssh_host_*_key*"))
	keep := map[string]bool{}
	for _, k := range keys {
		keep[k.name], keep[k.name+".pub"] = true, true
	}
	old = slices.DeleteFunc(old, func(f string) bool { return keep[filepath.Base(f)] })
	slices.SortStableFunc(old, func(a, b string) int {
		ap, bp := strings.HasSuffix(a, "_key"), strings.HasSuffix(b, "_key")
		switch {
		case ap == bp:
			return 0
		case ap:
			return 1
		}
		return -1
	})
	var errs []error
	for _, f := range old {
		d.at("remove " + f)
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing the old host key file %s: %w", f, err))
		}
	}
	if len(old) > 0 {
		errs = append(errs, fsutil.SyncDir(d.dir))
	}
	return errors.Join(errs...)
}

func (d hostKeyDir) temp(name string) string {
	return filepath.Join(d.dir, "."+name+tempSuffix)
}

func (d hostKeyDir) at(what string) {
	if d.step != nil {
		d.step(what)
	}
}

// removeTemps removes what an install interrupted by a crash left: new
// key files never renamed, and ssh-keygen's staging directories.
func (d hostKeyDir) removeTemps() {
	left, _ := filepath.Glob(filepath.Join(d.dir, ".ssh_host_*"+tempSuffix))
	for _, f := range left {
		os.Remove(f)
	}
	staged, _ := filepath.Glob(filepath.Join(d.dir, keygenStaging+"*"))
	for _, f := range staged {
		os.RemoveAll(f)
	}
}

// writeFileSynced creates path (which must not exist) with data, and
// fsyncs it before it returns.
func writeFileSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// publicHostKey is the public half of the host key in the file priv, in
// authorized_keys form: what a server loading that file offers. When the
// private key cannot be read or parsed, it is the key's .pub; ok is false
// when there is no private key, which no server can offer.
func publicHostKey(priv string) (key string, ok bool, err error) {
	data, err := readBounded(priv, maxHostKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err == nil {
		var signer ssh.Signer
		if signer, err = ssh.ParsePrivateKey(data); err == nil {
			return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), true, nil
		}
	}
	pub, perr := readBounded(priv+".pub", maxHostKeyFile)
	if perr != nil {
		return "", false, fmt.Errorf("reading host key %s: %w; and its .pub: %w", priv, err, perr)
	}
	return strings.TrimSpace(string(pub)), true, nil
}

// maxHostKeyFile bounds a host key file: an RSA key of 16384 bits in
// OpenSSH's format is under 13 KiB.
const maxHostKeyFile = 64 << 10

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
