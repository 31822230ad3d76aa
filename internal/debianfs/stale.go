package debianfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"banger/internal/debootstrap"
	"banger/internal/disk"
)

const (
	// freshWork is how long a work directory is left alone whatever its
	// lock says: its Build may not have locked it yet.
	freshWork = time.Minute
	// staleUnreadable is the age after which a work directory this user
	// cannot open (root's, for a daemon that is not root) is reported:
	// younger, it may be a 'system setup --default-rootfs' still running.
	staleUnreadable = 24 * time.Hour
)

// tempPrefix names the work directories of Builds of dir, next to it.
func tempPrefix(dir string) string { return "." + filepath.Base(dir) + ".tmp-" }

// lockDir opens dir and takes an exclusive flock on it, held until the
// file is closed, by whichever process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}

// RemoveStale removes the work directories that Builds of dir left when
// they were killed (a Build that returns removes its own). A Build holds
// its work directory locked while it runs, in whichever process, so
// locked ones are left, as are directories with something still mounted
// in them (a killed debootstrap's /proc) and, when this user cannot open
// them, those of root: the error says what to run for those. It returns
// how many it removed and the disk space they took (allocated bytes).
func RemoveStale(dir string) (n int, bytes int64, err error) {
	parent := filepath.Dir(dir)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix(dir)) {
			continue
		}
		size, err := removeStale(filepath.Join(parent, e.Name()))
		if err != nil {
			errs = append(errs, err)
		} else if size >= 0 {
			n++
			bytes += size
		}
	}
	return n, bytes, errors.Join(errs...)
}

// removeStale removes one work directory unless it is in use, and
// returns its allocated size, or -1 when it was left.
func removeStale(path string) (int64, error) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < freshWork {
		return -1, nil
	}
	lock, err := lockDir(path)
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return -1, nil // a Build is running in it
	case errors.Is(err, fs.ErrPermission) && time.Since(fi.ModTime()) < staleUnreadable:
		return -1, nil
	case errors.Is(err, fs.ErrPermission):
		return -1, fmt.Errorf("%s is left from an interrupted 'sudo banger system setup --default-rootfs' and belongs to root; remove it with: sudo rm -rf %s", path, path)
	case err != nil:
		return -1, err
	}
	defer lock.Close()
	mounts, err := debootstrap.MountsUnder(path)
	if err != nil {
		return -1, err
	}
	if len(mounts) > 0 {
		return -1, fmt.Errorf("%s is left from an interrupted build of the default root filesystem but still has %s mounted in it; unmount them (sudo umount -l %s), then remove it",
			path, strings.Join(mounts, ", "), strings.Join(mounts, " "))
	}
	size := disk.TreeUsage(path)
	if err := os.RemoveAll(path); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return -1, fmt.Errorf("removing %s: %w; remove it with: sudo rm -rf %s", path, err, path)
		}
		return -1, fmt.Errorf("removing %s: %w", path, err)
	}
	return size, nil
}
