// Package paths computes banger's XDG directory layout.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Layout is where banger keeps its files. Every field is absolute.
type Layout struct {
	ConfigDir  string // $XDG_CONFIG_HOME/banger
	ConfigFile string // ConfigDir/config.toml
	SSHDir     string // ConfigDir/ssh

	StateDir   string // $XDG_STATE_HOME/banger: database, logs, managed artifacts
	DBPath     string
	LogFile    string
	WebToken   string // the web UI's secret (0600)
	ImagesDir  string
	KernelsDir string
	VMsDir     string
	// TemplatesDir holds VM templates, inside the image store.
	TemplatesDir string

	CacheDir    string // $XDG_CACHE_HOME/banger
	OCICacheDir string

	RuntimeDir string // $XDG_RUNTIME_DIR/banger: socket, lock, pid
	SocketPath string
	LockPath   string
	PIDPath    string
}

// FromEnv builds the layout from the XDG variables and $HOME.
func FromEnv() (Layout, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Layout{}, fmt.Errorf("finding home directory: %w", err)
	}
	xdg := func(name, fallback string) string {
		if v := os.Getenv(name); filepath.IsAbs(v) {
			return v
		}
		return filepath.Join(home, fallback)
	}
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(runtime) {
		runtime = filepath.Join(os.TempDir(), "banger-"+strconv.Itoa(os.Getuid()))
	} else {
		runtime = filepath.Join(runtime, "banger")
	}
	return New(
		filepath.Join(xdg("XDG_CONFIG_HOME", ".config"), "banger"),
		filepath.Join(xdg("XDG_STATE_HOME", ".local/state"), "banger"),
		filepath.Join(xdg("XDG_CACHE_HOME", ".cache"), "banger"),
		runtime,
	), nil
}

// New builds a layout from its four roots.
func New(configDir, stateDir, cacheDir, runtimeDir string) Layout {
	return Layout{
		ConfigDir:   configDir,
		ConfigFile:  filepath.Join(configDir, "config.toml"),
		SSHDir:      filepath.Join(configDir, "ssh"),
		StateDir:    stateDir,
		DBPath:      filepath.Join(stateDir, "banger.db"),
		LogFile:     filepath.Join(stateDir, "bangerd.log"),
		WebToken:    filepath.Join(stateDir, "web-token"),
		ImagesDir:   filepath.Join(stateDir, "images"),
		KernelsDir:  filepath.Join(stateDir, "kernels"),
		VMsDir:      filepath.Join(stateDir, "vms"),
		CacheDir:    cacheDir,
		OCICacheDir: filepath.Join(cacheDir, "oci"),
		RuntimeDir:  runtimeDir,
		SocketPath:  filepath.Join(runtimeDir, "bangerd.sock"),
		LockPath:    filepath.Join(runtimeDir, "bangerd.lock"),
		PIDPath:     filepath.Join(runtimeDir, "bangerd.pid"),

		TemplatesDir: filepath.Join(stateDir, "images", "templates"),
	}
}

// Ensure creates every directory of the layout, 0700 and ours: all of
// them hold private material (keys, the socket, logs, images, layers
// pulled with the user's credentials). The daemon calls it at every
// start, so a directory that others could read is closed again.
func (l Layout) Ensure() error {
	for _, d := range append(l.Private(), l.OCICacheDir, l.ImagesDir, l.KernelsDir, l.VMsDir) {
		if err := EnsurePrivateDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Private lists the top-level directories, which must be 0700 and ours.
func (l Layout) Private() []string {
	return []string{l.ConfigDir, l.StateDir, l.CacheDir, l.RuntimeDir}
}

// EnsurePrivateDir creates dir with mode 0700, checks that it is owned by
// the current user (a link of ours may point at a directory of ours) and
// takes away any access others have, so nothing inside can be read or
// swapped by another user.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 && owner(fi) == os.Getuid() {
		fi, err = os.Stat(dir) // a link of ours (say, the cache moved to a bigger disk): its target counts
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory; remove it and retry", dir)
	}
	if uid := owner(fi); uid != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d); remove it, or point the XDG_*_HOME or XDG_RUNTIME_DIR variable at a directory of yours", dir, uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restricting %s to 0700: %w", dir, err)
		}
	}
	return nil
}

// owner is the uid owning fi's file, -1 when unknown.
func owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
