package guestagent

import "path/filepath"

// Paths are where the agent keeps and finds files in the guest.
type Paths struct {
	// StateDir holds sessions/<name>/ and the builtin SSH server's host key.
	StateDir string
	// ConfigDir holds what the host injects, e.g. authorized_key.
	ConfigDir string
	// Home is root's home: the put_files root and where root's
	// .ssh/authorized_keys lives.
	Home string
	// SSHDir is OpenSSH's configuration directory.
	SSHDir string
	// Root is the guest's root directory, under which reidentify rewrites
	// etc/hostname, etc/hosts, etc/resolv.conf and etc/machine-id. Empty
	// refuses reidentify: an agent on a developer's host (or in a test
	// that did not ask for it) must not rename the machine it runs on.
	Root string
}

// DefaultPaths are the paths of a real guest.
func DefaultPaths() Paths {
	return Paths{
		StateDir:  "/var/lib/banger",
		ConfigDir: "/etc/banger",
		Home:      "/root",
		SSHDir:    "/etc/ssh",
		Root:      "/",
	}
}

func (p Paths) sessionsDir() string        { return filepath.Join(p.StateDir, "sessions") }
func (p Paths) injectedKeyFile() string    { return filepath.Join(p.ConfigDir, "authorized_key") }
func (p Paths) rootAuthorizedKeys() string { return filepath.Join(p.Home, ".ssh", "authorized_keys") }
