package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/api/errdefs"
)

// Remove deletes the kernel dir/name and any partial download of it. It
// is errdefs.NotFound only when neither exists. The kernel is first
// renamed to a staging name, so a crash mid-delete leaves no half kernel
// behind, only litter for CleanStaging.
func Remove(dir, name string) error {
	if p := checkName(name); p != "" {
		return errdefs.Invalid("kernel %q: %s", name, p)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	final := filepath.Join(dir, name)
	if _, busy := pulling.Load(final); busy {
		return errdefs.Conflict("kernel %q is being pulled; cancel the pull or wait for it to finish", name)
	}
	partial := filepath.Join(dir, partialDir, name)
	_, errKernel := os.Lstat(final)
	_, errPartial := os.Lstat(partial)
	if errors.Is(errKernel, fs.ErrNotExist) && errors.Is(errPartial, fs.ErrNotExist) {
		return errdefs.NotFound("kernel %q not found; run 'banger kernel list' to see pulled kernels", name)
	}
	if err := os.RemoveAll(partial); err != nil {
		return fmt.Errorf("removing partial download of kernel %q: %w", name, err)
	}
	if errKernel != nil {
		return nil
	}
	trash, err := os.MkdirTemp(dir, stagingPrefix+name+"-rm-")
	if err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	if err := os.Rename(final, filepath.Join(trash, name)); err != nil {
		os.Remove(trash)
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing kernel %q: %w", name, err)
	}
	return nil
}

// CleanStaging removes staging dirs left by a crashed pull or remove. Call
// it when the daemon starts, before any pull runs. A missing dir is fine.
func CleanStaging(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning kernel staging dirs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleaning kernel staging dirs: %w", err)
	}
	return nil
}

// SweepPartials removes partial downloads nobody came back for: a kernel's
// .partial/<name> dir whose newest file is older than olderThan, or that
// holds nothing. Call it when the daemon starts, before any pull runs; a
// missing dir is fine. It returns the names it removed.
func SweepPartials(dir string, olderThan time.Duration) ([]string, error) {
	root := filepath.Join(dir, partialDir)
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweeping partial kernel downloads: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var removed []string
	var errs []error
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		if _, busy := pulling.Load(filepath.Join(dir, e.Name())); busy {
			continue
		}
		if newest, err := newestFile(path); err != nil {
			errs = append(errs, err)
			continue
		} else if newest.After(cutoff) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("sweeping partial kernel downloads: %w", err)
	}
	return removed, nil
}

// newestFile is the newest modification time of a file under path (path
// itself when it is not a directory); the zero time when there is none.
func newestFile(path string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest, err
}
