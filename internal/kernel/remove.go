package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/errdefs"
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
