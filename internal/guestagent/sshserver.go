package guestagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"banger/internal/agentproto"
)

// SSHServer is the agent's own SSH server for images without sshd: public
// key login, shell, exec, PTY, the sftp subsystem and local port
// forwarding, which is what ssh, scp, rsync and VS Code Remote-SSH need.
type SSHServer struct {
	paths Paths
	log   *slog.Logger
	keyed atomic.Pointer[hostKeyed] // replaced whole by RotateHostKeys
	keys  hostKeyDir
}

// builtinHostKey is the server's host key file in Paths.StateDir.
const builtinHostKey = "ssh_host_ed25519_key"

// hostKeyed is the server's host key with the configuration that offers it.
type hostKeyed struct {
	signer ssh.Signer
	config *ssh.ServerConfig
}

// NewSSHServer loads the host key from Paths.StateDir, generating it on
// first use.
func NewSSHServer(p Paths, log *slog.Logger) (*SSHServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := newHostKeyDir(p.StateDir, 0o700)
	signer, err := loadOrCreateHostKey(keys, builtinHostKey, log)
	if err != nil {
		return nil, err
	}
	s := &SSHServer{paths: p, log: log, keys: keys}
	s.useKey(signer)
	return s, nil
}

func (s *SSHServer) useKey(signer ssh.Signer) {
	config := &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		ServerVersion:     "SSH-2.0-banger",
	}
	config.AddHostKey(signer)
	s.keyed.Store(&hostKeyed{signer: signer, config: config})
}

// RotateHostKeys implements HostKeyRotator: a new ed25519 host key replaces
// the old one on disk (see hostKeyDir: written aside, fsynced, renamed
// over it) and then for every connection accepted from now on. When it
// cannot be written, the server keeps its old key, on disk and in use.
func (s *SSHServer) RotateHostKeys() (agentproto.HostKeys, error) {
	signer, err := createHostKey(s.keys, builtinHostKey, s.log)
	if err != nil {
		return agentproto.HostKeys{}, err
	}
	s.useKey(signer)
	return s.HostKeys()
}

// Kind implements SSHProvider.
func (s *SSHServer) Kind() string { return "builtin" }

// HostKeys implements SSHProvider.
func (s *SSHServer) HostKeys() (agentproto.HostKeys, error) {
	line := string(ssh.MarshalAuthorizedKey(s.keyed.Load().signer.PublicKey()))
	return agentproto.HostKeys{Server: s.Kind(), Keys: []string{line[:len(line)-1]}}, nil
}

// Serve accepts SSH connections on ln until ctx is done.
func (s *SSHServer) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting ssh on %s: %w", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

func (s *SSHServer) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	sconn, chans, reqs, err := ssh.NewServerConn(nc, s.keyed.Load().config)
	if err != nil {
		s.log.Debug("ssh handshake failed", "remote", nc.RemoteAddr(), "err", err)
		return
	}
	defer sconn.Close()
	stop := context.AfterFunc(ctx, func() { sconn.Close() })
	defer stop()
	go ssh.DiscardRequests(reqs)
	user := sconn.Permissions.Extensions["user"]
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			go s.serveSession(ctx, user, nch)
		case "direct-tcpip":
			go s.forwardTCP(nch)
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported channel type "+nch.ChannelType())
		}
	}
}

// checkKey accepts a key listed for the user. The agent's own user (root in
// a guest) also takes the keys banger manages: Paths.Home's
// authorized_keys and the injected Paths.ConfigDir/authorized_key.
func (s *SSHServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	acct, err := lookupAccount(meta.User())
	if err != nil {
		return nil, err
	}
	files := []string{filepath.Join(acct.Home, ".ssh", "authorized_keys")}
	if acct.UID == uint32(os.Getuid()) {
		files = append(files, s.paths.rootAuthorizedKeys(), s.paths.injectedKeyFile())
	} else if os.Getuid() != 0 {
		return nil, fmt.Errorf("the agent cannot log in %q: it does not run as root", meta.User())
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil && keyBlobs(data)[string(key.Marshal())] {
			return &ssh.Permissions{Extensions: map[string]string{"user": acct.Name}}, nil
		}
	}
	return nil, fmt.Errorf("key %s is not authorized for %q", ssh.FingerprintSHA256(key), meta.User())
}

// loadOrCreateHostKey reads the OpenSSH private key name in d, writing
// a new ed25519 one (and its .pub) when there is none.
func loadOrCreateHostKey(d hostKeyDir, name string, log *slog.Logger) (ssh.Signer, error) {
	path := filepath.Join(d.dir, name)
	data, err := readBounded(path, maxHostKeyFile)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("parsing host key %s: %w", path, err)
		}
		return signer, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading host key: %w", err)
	}
	return createHostKey(d, name, log)
}

// createHostKey installs a new ed25519 key as name in d.
func createHostKey(d hostKeyDir, name string, log *slog.Logger) (ssh.Signer, error) {
	k, signer, err := newEd25519HostKey(name)
	if err != nil {
		return nil, err
	}
	untidy, err := d.install([]hostKey{k}, false)
	if err != nil {
		return nil, err
	}
	if untidy != nil {
		log.Warn("the new host key is in place, but tidying after it failed", "err", untidy)
	}
	return signer, nil
}
