package disk

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CopyTree copies the directory src to dst, which must not exist: regular
// files (reflinked where possible, as Copy does), directories and
// symlinks, with their permission bits. Symlinks are copied as links and
// never followed, so nothing outside src is read. Any other file type
// (FIFO, socket, device) fails the copy, naming the file. On error or
// cancellation dst is removed. WithProgress counts the data bytes of all
// files.
func CopyTree(ctx context.Context, src, dst string, opts ...Option) error {
	o := newOptions(opts)
	o.noFollow = true
	o.noSync = true
	if err := copyTree(ctx, src, dst, o); err != nil {
		return fmt.Errorf("copying tree %s to %s: %w", src, dst, err)
	}
	return nil
}

// dirMode is a directory's permission bits, applied after its contents.
type dirMode struct {
	path string
	perm fs.FileMode
}

func copyTree(ctx context.Context, src, dst string, o options) (err error) {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is a %s, not a directory", src, typeName(fi.Mode()))
	}
	// Owner-only until the copy is complete and the real modes go on.
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err // not ours to remove
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	dirs := []dirMode{{dst, fi.Mode().Perm()}}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == src {
			return nil // made above
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return copyEntry(ctx, path, filepath.Join(dst, rel), d, o, &dirs)
	})
	if err != nil {
		return err
	}
	// Deepest first, and only now: a read-only directory must be filled
	// before it is locked, and must stay removable if the copy fails.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].perm); err != nil {
			return err
		}
	}
	return syncTree(dst)
}

// copyEntry copies one entry found by the walk to target.
func copyEntry(ctx context.Context, path, target string, d fs.DirEntry, o options, dirs *[]dirMode) error {
	switch t := d.Type(); {
	case t.IsDir():
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		*dirs = append(*dirs, dirMode{target, info.Mode().Perm()})
		return nil
	case t.IsRegular():
		_, err := copyFile(ctx, path, target, o)
		return err
	case t&fs.ModeSymlink != 0:
		link, err := os.Readlink(path)
		if err != nil {
			return err
		}
		return os.Symlink(link, target)
	default:
		return fmt.Errorf("%s is a %s; only regular files, directories and symlinks can be copied",
			path, typeName(t))
	}
}

// syncTree makes the whole copy durable with one syncfs on its
// filesystem: for a modules tree of thousands of small files that is far
// cheaper than an fsync per file and per directory.
func syncTree(dst string) error {
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
