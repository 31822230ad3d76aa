package guestagent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/tarcopy"
)

// putFiles writes credential files under Paths.Home. Every path is checked
// before anything is written; each file is replaced atomically, and os.Root
// keeps symlinks inside the home from redirecting a write elsewhere.
func (s *Server) putFiles(ctx context.Context, req agentproto.PutFilesRequest) (any, error) {
	home := s.cfg.Paths.Home
	names := make([]string, len(req.Files))
	for i, f := range req.Files {
		name, err := homeRelative(home, f.Path)
		if err != nil {
			return nil, err
		}
		names[i] = name
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", home, err)
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", home, err)
	}
	defer root.Close()
	for i, f := range req.Files {
		mode := os.FileMode(f.Mode) & os.ModePerm
		if mode == 0 {
			mode = 0o600
		}
		if err := replaceFile(root, names[i], f.Content, mode); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	return nil, nil
}

// homeRelative maps p (absolute under home, or relative to it) to a clean
// relative name, refusing anything outside home.
func homeRelative(home, p string) (string, error) {
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(home, filepath.Clean(p))
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", errdefs.Invalid("put_files path %q is outside %s", p, home)
		}
		p = rel
	}
	name, err := tarcopy.CleanName(filepath.ToSlash(p))
	if err != nil || name == "" {
		return "", errdefs.Invalid("put_files path %q is outside %s or not a file", p, home)
	}
	return name, nil
}

func replaceFile(root *os.Root, name string, content []byte, mode os.FileMode) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), ".banger-tmp-"+hex.EncodeToString(rnd[:]))
	if err := root.WriteFile(tmp, content, mode); err != nil {
		return err
	}
	err := root.Chmod(tmp, mode) // WriteFile's mode is subject to umask
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

// authorizeKey adds a key to root's authorized_keys.
func (s *Server) authorizeKey(ctx context.Context, req agentproto.AuthorizeKeyRequest) (any, error) {
	if err := addAuthorizedKeys(s.cfg.Paths.rootAuthorizedKeys(), []byte(req.Key)); err != nil {
		return nil, err
	}
	return nil, nil
}

// syncInjectedKeys copies the keys the host injected into the image (at
// Paths.ConfigDir/authorized_key) into root's authorized_keys.
func syncInjectedKeys(p Paths) error {
	data, err := os.ReadFile(p.injectedKeyFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading injected key: %w", err)
	}
	return addAuthorizedKeys(p.rootAuthorizedKeys(), data)
}

// addAuthorizedKeys appends each key line of keys to the authorized_keys
// file at path unless it is already there.
func addAuthorizedKeys(path string, keys []byte) error {
	have, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	present := keyBlobs(have)
	var add []byte
	sc := bufio.NewScanner(bytes.NewReader(keys))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return errdefs.Invalid("parsing ssh public key %.40q: %v", line, err)
		}
		if !present[string(pub.Marshal())] {
			present[string(pub.Marshal())] = true
			add = append(append(add, line...), '\n')
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if len(have) > 0 && have[len(have)-1] != '\n' {
		add = append([]byte{'\n'}, add...)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	_, err = f.Write(add)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// keyBlobs indexes the keys of an authorized_keys file by wire encoding.
func keyBlobs(data []byte) map[string]bool {
	m := map[string]bool{}
	for len(data) > 0 {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			break
		}
		m[string(pub.Marshal())] = true
		data = rest
	}
	return m
}
