package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"banger/internal/config"
	"banger/internal/debianfs"
)

// prepareDefaultRootfs builds, as root, the Debian devbox root filesystem
// into the invoking user's cache, owned by them, where their daemon picks
// it up when it makes the default image.
func (a *app) prepareDefaultRootfs(ctx context.Context, f systemFlags) error {
	configPath, asJSON := f.config, f.asJSON
	uid, gid, home, err := invoker(f.user)
	if err != nil {
		return err
	}
	cacheDir, cfgPath := a.layout.CacheDir, a.layout.ConfigFile
	if home != "" { // sudo resets HOME and the XDG variables: the user's own
		cacheDir, cfgPath = filepath.Join(home, ".cache", "banger"), filepath.Join(home, ".config", "banger", "config.toml")
	}
	if configPath != "" {
		cfgPath = configPath
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	dir := debianfs.PreparedDir(cacheDir)
	if debianfs.Present(dir) {
		fmt.Fprintf(a.stdout, "default root filesystem: already prepared in %s\n", dir)
		return nil
	}
	// Directories made here belong to the user, as if their daemon made them.
	for _, d := range []string{filepath.Dir(cacheDir), cacheDir} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			if err := os.Mkdir(d, 0o700); err != nil {
				return err
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return err
			}
		}
	}
	pv := newProgressView(a.stderr)
	err = debianfs.Build(ctx, dir, debianfs.Options{Mirror: cfg.DebianMirror, UID: uid, GID: gid}, pv.Event)
	pv.Close()
	if err != nil {
		return fmt.Errorf("building the default root filesystem: %w", err)
	}
	if !asJSON {
		fmt.Fprintf(a.stdout, "default root filesystem: built in %s; your daemon makes the default image from it on first use\n", dir)
	}
	return nil
}
