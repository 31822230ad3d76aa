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
}

// DefaultPaths are the paths of a real guest.
func DefaultPaths() Paths {
	return Paths{
		StateDir:  "/var/lib/banger",
		ConfigDir: "/etc/banger",
		Home:      "/root",
		SSHDir:    "/etc/ssh",
	}
}

func (p Paths) sessionsDir() string        { return filepath.Join(p.StateDir, "sessions") }
func (p Paths) injectedKeyFile() string    { return filepath.Join(p.ConfigDir, "authorized_key") }
func (p Paths) rootAuthorizedKeys() string { return filepath.Join(p.Home, ".ssh", "authorized_keys") }
