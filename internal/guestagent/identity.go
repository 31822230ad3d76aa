package guestagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// HostKeyRotator is an SSHProvider whose host keys reidentify can replace
// while it runs.
type HostKeyRotator interface {
	RotateHostKeys() (agentproto.HostKeys, error)
}

// reidentify applies a new identity after a restore. Everything is checked
// before anything changes. eth0 goes down first, so the guest says nothing
// on the network as its parent while its name, machine-id and host keys
// change, and comes back up last with the new MAC address and address.
func (s *Server) reidentify(ctx context.Context, req agentproto.ReidentifyRequest) (any, error) {
	id, err := req.Parse()
	if err != nil {
		return nil, err
	}
	root := s.cfg.Paths.Root
	if root == "" {
		return nil, errdefs.Unsupported("this agent does not manage the machine's identity (it runs in %s mode)", s.cfg.InitMode)
	}
	if _, err := os.Stat("/sys/class/net/" + guestNIC); err != nil {
		return nil, errdefs.Unavailable("the guest has no %s to readdress: %v", guestNIC, err)
	}
	s.identity.Lock()
	defer s.identity.Unlock()
	if err := takeDown(guestNIC); err != nil {
		return nil, err
	}
	res := agentproto.Reidentified{Hostname: id.Hostname, MAC: id.MAC.String(), Addr: id.Addr.String()}
	if err := setHostname(root, id.Hostname, id.Addr); err != nil {
		return nil, err
	}
	if res.MachineID, err = newMachineID(root); err != nil {
		return nil, err
	}
	if rot, ok := s.cfg.SSH.(HostKeyRotator); ok {
		if res.HostKeys, err = rot.RotateHostKeys(); err != nil {
			return nil, fmt.Errorf("replacing the ssh host keys: %w", err)
		}
	}
	if err := readdress(guestNIC, id.MAC, id.Addr, id.Gateway); err != nil {
		return nil, err
	}
	if err := writeResolvConf(root, id.DNS); err != nil {
		return nil, err
	}
	s.log.Info("reidentified", "identity", id.String(), "machine_id", res.MachineID)
	return res, nil
}

// setHostname sets the kernel's hostname and the files that name it,
// mapping it to addr in etc/hosts as at boot.
func setHostname(root, name string, addr netip.Prefix) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("setting the hostname to %s: %w", name, err)
	}
	return errors.Join(writeHostname(root, name), writeHosts(root, name, addr.Addr()))
}

// newMachineID writes a new random machine-id (a version 4 UUID in
// systemd's format: 32 lowercase hex digits) to etc/machine-id, and to
// var/lib/dbus/machine-id when that is a file of its own rather than a
// link to the first. It returns the new ID.
func newMachineID(root string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("drawing a machine-id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id := hex.EncodeToString(b[:])
	if err := replaceEtcFile(filepath.Join(root, "etc", "machine-id"), id+"\n"); err != nil {
		return "", err
	}
	dbus := filepath.Join(root, "var", "lib", "dbus", "machine-id")
	if fi, err := os.Lstat(dbus); err == nil && fi.Mode().IsRegular() {
		if err := writeFileAtomic(dbus, []byte(id+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	return id, nil
}
