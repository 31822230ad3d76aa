package vms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"banger/api"
	"banger/internal/disk"
	"banger/internal/ext4"
	"banger/internal/fsutil"
)

// modulesDisk returns a read-only ext4 image of im's kernel modules, built
// once per modules tree and shared by every VM of the image (it is
// attached read-only). It returns "" when the image has no modules.
func (m *Manager) modulesDisk(ctx context.Context, im api.Image) (string, error) {
	if im.Modules == "" {
		return "", nil
	}
	key, size, err := treeKey(im.Modules)
	if err != nil {
		return "", fmt.Errorf("reading kernel modules %s: %w", im.Modules, err)
	}
	dir := filepath.Join(m.layout.CacheDir, "modules")
	out := filepath.Join(dir, key+".ext4")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp := out + ".tmp-" + fsutil.RandomHex()
	defer os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size + size/4 + 16<<20)
	f.Close()
	if err != nil {
		return "", err
	}
	src, cleanup, err := modulesRoot(ctx, im.Modules)
	if err != nil {
		return "", err
	}
	defer cleanup()
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "banger-modules", "-E", "root_owner=0:0", "-m", "0", "-d", src, tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the kernel modules disk: %v: %s", err, strings.TrimSpace(string(b)))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// modulesRoot returns a directory laid out like /lib/modules for dir.
// --modules may name either that directory (holding <release>/) or one
// release directory itself (holding kernel/, modules.order, ...); the
// latter is copied under its own name in a temporary directory.
func modulesRoot(ctx context.Context, dir string) (string, func(), error) {
	for _, marker := range []string{"kernel", "modules.order", "modules.builtin"} {
		if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
			tmp, err := os.MkdirTemp("", "banger-modules-")
			if err != nil {
				return "", nil, err
			}
			cleanup := func() { os.RemoveAll(tmp) }
			if err := disk.CopyTree(ctx, dir, filepath.Join(tmp, filepath.Base(dir))); err != nil {
				cleanup()
				return "", nil, fmt.Errorf("staging kernel modules: %w", err)
			}
			return tmp, cleanup, nil
		}
	}
	return dir, func() {}, nil
}

// treeKey identifies a directory tree's content cheaply (paths, sizes,
// modification times) and sums its file sizes.
func treeKey(root string) (string, int64, error) {
	h := sha256.New()
	var total int64
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\n", rel, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		total += fi.Size()
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)[:12]), total, err
}

// modulesMountUnit is the systemd mount unit that puts the modules disk
// on the image's /lib/modules (named after its canonical path, which is
// /usr/lib/modules on merged-/usr images).
func modulesMountUnit(ctx context.Context, root string) (name, body string) {
	where := "/lib/modules"
	if lib, err := ext4.Resolve(ctx, root, "/lib"); err == nil {
		where = path.Join(lib, "modules")
	}
	name = strings.ReplaceAll(strings.TrimPrefix(where, "/"), "/", "-") + ".mount"
	body = `[Unit]
Description=banger kernel modules
DefaultDependencies=no
Before=local-fs.target systemd-modules-load.service

[Mount]
What=/dev/vdc
Where=` + where + `
Type=ext4
Options=ro,nodev,nosuid

[Install]
WantedBy=local-fs.target
`
	return name, body
}
