package disk

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// CreateSparse creates the file path, which must not exist, as size bytes
// of hole: an empty disk that uses no space until written. It is created
// 0600 because it will hold a guest's data.
func CreateSparse(path string, size int64) error {
	if size < 0 {
		return fmt.Errorf("creating sparse file %s: negative size %d", path, size)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating sparse file %s: %w", path, err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("creating sparse file %s: %w", path, err)
	}
	return nil
}

// Usage reports the size of the file at path as programs see it
// (apparent) and the disk space it takes (allocated). For a sparse image
// allocated is the number that matters when budgeting disk space.
func Usage(path string) (apparent, allocated int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("measuring %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("measuring %s: no stat data", path)
	}
	// st_blocks is in 512-byte units whatever the filesystem block size.
	return fi.Size(), st.Blocks * 512, nil
}

// Allocated is the disk space the file fi describes takes (st_blocks),
// 0 when fi carries no stat data.
func Allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return 0
}

// Du is what du reports for the tree at root: the allocated size of
// every entry, symlinks not followed, a file with several hardlinks in the
// tree counted once, and how many inodes it holds. With skipErrors what
// cannot be read counts nothing instead of failing the walk.
func Du(root string, skipErrors bool) (used, inodes int64, err error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			var fi fs.FileInfo
			if fi, err = d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && !fi.IsDir() {
					k := inode{uint64(st.Dev), st.Ino}
					if seen[k] {
						return nil
					}
					seen[k] = true
				}
				used += Allocated(fi)
				inodes++
				return nil
			}
		}
		if skipErrors {
			return nil // an unreadable entry: skip it, keep counting
		}
		return err
	})
	return used, inodes, err
}

// TreeUsage is Du's size of a tree about to be removed: an estimate, so
// it does not fail.
func TreeUsage(root string) int64 {
	used, _, _ := Du(root, true)
	return used
}

// DataSize reports the bytes in the data extents of the file at path:
// what Copy reports to a progress counter, so the right total for it.
func DataSize(path string) (int64, error) {
	f, fi, err := openSource(path, false)
	if err != nil {
		return 0, fmt.Errorf("measuring data in %s: %w", path, err)
	}
	defer f.Close()
	n, err := dataSize(f, fi.Size())
	if err != nil {
		return 0, fmt.Errorf("measuring data in %s: %w", path, err)
	}
	return n, nil
}
