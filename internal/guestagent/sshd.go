package guestagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
)

// OpenSSH is the image's own sshd, configured by the agent: host keys made
// on the first boot of this disk, key-only logins (root included).
type OpenSSH struct {
	paths  Paths
	binary string
	log    *slog.Logger
	// pidFile is where an sshd the agent did not start (under systemd)
	// writes its PID: sshd's default PidFile.
	pidFile string
	// running is the PID of the sshd that Run keeps, 0 when there is none.
	running atomic.Int64
	// keys replaces the host keys in SSHDir.
	keys hostKeyDir
}

// FindSSHD returns the image's sshd, or "" when it has none.
func FindSSHD() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// ConfigureOpenSSH prepares the image's sshd at binary.
func ConfigureOpenSSH(p Paths, binary string, log *slog.Logger) (*OpenSSH, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &OpenSSH{paths: p, binary: binary, log: log, pidFile: "/run/sshd.pid", keys: newHostKeyDir(p.SSHDir, 0o755)}
	if err := o.ensureHostKeys(); err != nil {
		return nil, err
	}
	if err := o.writeConfig(); err != nil {
		return nil, err
	}
	return o, nil
}

// Kind implements SSHProvider.
func (o *OpenSSH) Kind() string { return "openssh" }

var hostKeyTypes = []string{"ed25519", "ecdsa", "rsa"} // preference order

// HostKeys implements SSHProvider: the public half of each private host
// key, which is what sshd offers (a .pub stands in for a private key the
// agent cannot read). A .pub without its private key is not reported:
// sshd cannot offer it.
func (o *OpenSSH) HostKeys() (agentproto.HostKeys, error) {
	hk := agentproto.HostKeys{Server: o.Kind()}
	var errs []error
	for _, t := range hostKeyTypes {
		key, ok, err := publicHostKey(filepath.Join(o.paths.SSHDir, "ssh_host_"+t+"_key"))
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			hk.Keys = append(hk.Keys, key)
		}
	}
	if len(hk.Keys) == 0 {
		return hk, fmt.Errorf("no host keys in %s: %w", o.paths.SSHDir, errors.Join(errs...))
	}
	return hk, nil
}

// ensureHostKeys replaces the image's host keys, which every VM cloned
// from the image would share, on the first boot of this disk.
func (o *OpenSSH) ensureHostKeys() error {
	marker := filepath.Join(o.paths.StateDir, "ssh-host-keys-generated")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := o.newHostKeys(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.paths.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", o.paths.StateDir, err)
	}
	return os.WriteFile(marker, nil, 0o600)
}

// newHostKeys replaces every host key in SSHDir with new ones: all the
// types ssh-keygen -A makes, or ed25519 and ECDSA keys made in process
// when the image has no working ssh-keygen. The image's keys stay until the new ones are in
// place (see hostKeyDir), then the types not made again go.
func (o *OpenSSH) newHostKeys() error {
	keys, err := o.keygen()
	if err != nil {
		// No ssh-keygen, or one too old to write under -f: the keys a
		// rotation makes, in process.
		o.log.Warn("ssh-keygen -A failed; generating ed25519 and ECDSA host keys in the agent", "err", err)
		ed, _, err1 := newEd25519HostKey("ssh_host_ed25519_key")
		ec, _, err2 := newECDSAHostKey("ssh_host_ecdsa_key")
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		keys = []hostKey{ed, ec}
	}
	untidy, err := o.keys.install(keys, true)
	if untidy != nil {
		o.log.Warn("the new host keys are in place, but tidying after them failed", "err", untidy)
	}
	return err
}

// RotateHostKeys implements HostKeyRotator: new host keys, then SIGHUP to
// the running sshd, which re-executes itself and loads them. Connections
// already open keep their session. An sshd that is not running reads the
// new keys when it starts. The new keys replace the old ones as
// hostKeyDir.install does: when they cannot be written, the old keys stay
// and sshd is not signalled; at no point is the guest without a host key.
//
// Unlike the first boot's ssh-keygen -A, rotation makes only the ed25519
// and ECDSA keys, in process, and drops the RSA key: generating an RSA key
// takes tens of seconds in a software-emulated guest, and a restore is
// meant to take well under one.
func (o *OpenSSH) RotateHostKeys() (agentproto.HostKeys, error) {
	ed, _, err := newEd25519HostKey("ssh_host_ed25519_key")
	if err != nil {
		return agentproto.HostKeys{}, err
	}
	ec, _, err := newECDSAHostKey("ssh_host_ecdsa_key")
	if err != nil {
		return agentproto.HostKeys{}, err
	}
	untidy, err := o.keys.install([]hostKey{ed, ec}, true)
	if err != nil {
		return agentproto.HostKeys{}, err
	}
	if untidy != nil {
		o.log.Warn("the new host keys are in place, but tidying after them failed", "err", untidy)
	}
	if pid := o.sshdPID(); pid > 0 {
		if err := unix.Kill(pid, unix.SIGHUP); err != nil {
			return agentproto.HostKeys{}, fmt.Errorf("telling sshd (pid %d) to load its new host keys: %w", pid, err)
		}
		o.log.Info("sshd reloaded with new host keys", "pid", pid)
	}
	return o.HostKeys()
}

// sshdPID is the listening sshd: the one Run keeps, else the one in the
// PID file when that process is an sshd.
func (o *OpenSSH) sshdPID() int {
	if pid := o.running.Load(); pid > 0 {
		return int(pid)
	}
	b, err := os.ReadFile(o.pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	if comm := readTrimmed("/proc/" + strconv.Itoa(pid) + "/comm"); comm != "sshd" {
		return 0
	}
	return pid
}

// keygenStaging starts the name of the directory, in SSHDir, where
// ssh-keygen -A writes new keys before they are installed.
const keygenStaging = ".banger-keygen-"

// keygen runs ssh-keygen -A with a new, empty staging directory as its
// prefix, so it makes every key type it knows there, and returns them.
func (o *OpenSSH) keygen() ([]hostKey, error) {
	if err := os.MkdirAll(o.paths.SSHDir, 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(o.paths.SSHDir, keygenStaging)
	if err != nil {
		return nil, fmt.Errorf("making a directory for new host keys: %w", err)
	}
	defer os.RemoveAll(stage)
	dir := filepath.Join(stage, "etc", "ssh")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command("ssh-keygen", "-A", "-f", stage).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("running ssh-keygen -A: %w: %s", err, strings.TrimSpace(string(out)))
	}
	made, _ := filepath.Glob(filepath.Join(dir, "ssh_host_*_key"))
	var keys []hostKey
	for _, f := range made {
		k := hostKey{name: filepath.Base(f)}
		if k.private, err = readBounded(f, maxHostKeyFile); err == nil {
			k.public, err = readBounded(f+".pub", maxHostKeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the key ssh-keygen -A made: %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("ssh-keygen -A made no host key in %s", dir)
	}
	return keys, nil
}

// sshdSettings come first in sshd's configuration, where the first value
// of a keyword wins. ChallengeResponseAuthentication is the spelling every
// OpenSSH release accepts.
const sshdSettings = `# Written by banger-vsock-agent: key-only logins, root included.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
ChallengeResponseAuthentication no
`

const (
	blockBegin = "# BEGIN banger\n"
	blockEnd   = "# END banger\n"
)

var includeDropIns = regexp.MustCompile(`(?m)^\s*Include\s+\S*sshd_config\.d/`)

// writeConfig uses the drop-in directory when sshd_config includes it, and
// otherwise puts a marked block at the top of sshd_config.
func (o *OpenSSH) writeConfig() error {
	main := filepath.Join(o.paths.SSHDir, "sshd_config")
	cfg, err := os.ReadFile(main)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", main, err)
	}
	if includeDropIns.Match(cfg) {
		dir := filepath.Join(o.paths.SSHDir, "sshd_config.d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		return os.WriteFile(filepath.Join(dir, "00-banger.conf"), []byte(sshdSettings), 0o644)
	}
	rest := string(cfg)
	if i := strings.Index(rest, blockBegin); i >= 0 {
		if j := strings.Index(rest[i:], blockEnd); j >= 0 {
			rest = rest[:i] + rest[i+j+len(blockEnd):]
		}
	}
	if err := os.WriteFile(main, []byte(blockBegin+sshdSettings+blockEnd+rest), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", main, err)
	}
	return nil
}

// Run keeps sshd running in the foreground (the agent is the init system in
// PID 1 mode). It waits while something else already serves port 22, such
// as an sshd left by an earlier agent.
func (o *OpenSSH) Run(ctx context.Context) {
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	wait := time.Second
	for ctx.Err() == nil {
		if !listening(22) {
			start := time.Now()
			cmd := exec.CommandContext(ctx, o.binary, "-D", "-e")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			err := cmd.Start()
			if err == nil {
				o.running.Store(int64(cmd.Process.Pid))
				err = cmd.Wait()
				o.running.Store(0)
			}
			o.log.Warn("sshd exited", "err", err)
			if time.Since(start) > time.Minute {
				wait = time.Second
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

func listening(port int) bool {
	ports, _ := listPorts("/proc")
	for _, p := range ports {
		if p.Port == port && strings.HasPrefix(p.Proto, "tcp") {
			return true
		}
	}
	return false
}
