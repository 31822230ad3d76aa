package kernels

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/kernel"
	"banger/internal/progress"
	"banger/internal/store"
)

// Kernels lists locally stored kernels.
func (s *Service) Kernels(ctx context.Context) ([]api.Kernel, error) {
	return s.store.Kernels(ctx)
}

// Kernel returns one local kernel.
func (s *Service) Kernel(ctx context.Context, name string) (api.Kernel, error) {
	k, err := s.store.Kernel(ctx, name)
	if errors.Is(err, store.ErrNoRow) {
		return api.Kernel{}, errdefs.NotFound("kernel %q is not pulled; run 'banger kernel pull %s' (see 'banger kernel list --available')", name, name)
	}
	return k, err
}

// Catalog returns the kernels on offer: the built-in catalog merged with
// the one at kernel_catalog_url, each marked when already pulled.
func (s *Service) Catalog(ctx context.Context) (api.Catalog, error) {
	cat := kernel.Builtin()
	if u := s.cfg.KernelCatalogURL; u != "" {
		extra, err := kernel.Fetch(ctx, s.http, u)
		if err != nil {
			return api.Catalog{}, fmt.Errorf("reading kernel catalog (kernel_catalog_url): %w", err)
		}
		cat = kernel.Merge(cat, extra)
	}
	local, err := s.store.Kernels(ctx)
	if err != nil {
		return api.Catalog{}, err
	}
	pulled := map[string]bool{}
	for _, k := range local {
		pulled[k.Name] = true
	}
	for i := range cat.Kernels {
		cat.Kernels[i].Pulled = pulled[cat.Kernels[i].Name]
	}
	return cat, nil
}

// PullKernel downloads a catalog kernel, verifies it and records it.
func (s *Service) PullKernel(ctx context.Context, name string, p progress.Func) (api.Kernel, error) {
	release, err := s.claim(name, "pull")
	if err != nil {
		return api.Kernel{}, err
	}
	defer release()
	if _, err := s.store.Kernel(ctx, name); err == nil {
		return api.Kernel{}, errdefs.Conflict("kernel %q is already pulled; remove it first with 'banger kernel rm %s' to pull it again", name, name)
	}
	cat, err := s.Catalog(ctx)
	if err != nil {
		return api.Kernel{}, err
	}
	entry, err := kernel.Find(cat, name)
	if err != nil {
		return api.Kernel{}, err
	}
	p.Step("pull", fmt.Sprintf("pulling kernel %s %s (%s)", entry.Name, entry.Version, entry.Arch))
	k, err := kernel.Pull(ctx, entry, kernel.PullOptions{Dir: s.layout.KernelsDir, Client: s.http, Progress: p, Source: entry.Kernel.URL})
	if err != nil {
		return api.Kernel{}, err
	}
	if err := s.store.Tx(ctx, func(tx *store.Tx) error { return tx.PutKernel(ctx, k) }); err != nil {
		os.RemoveAll(k.Dir)
		return api.Kernel{}, err
	}
	s.events.Event(ctx, "info", "kernel/"+name, "kernel "+name+" pulled")
	return k, nil
}

// RemoveKernel deletes a local kernel and any partial download of it.
// Images booting it keep their records but cannot boot, so that needs
// force. A kernel that was never pulled but has an interrupted download
// has no row; removing it discards the download.
func (s *Service) RemoveKernel(ctx context.Context, name string, force bool) error {
	release, err := s.claim(name, "remove")
	if err != nil {
		return err
	}
	defer release()
	pulled := true
	err = s.store.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.Kernel(ctx, name)
		if errors.Is(err, store.ErrNoRow) {
			pulled = false
			return nil
		}
		if err != nil {
			return err
		}
		users, err := tx.ImagesUsingKernel(ctx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 && !force {
			return errdefs.Conflict("kernel %q is used by image(s) %s; delete those first or pass --force", name, strings.Join(users, ", "))
		}
		return tx.DeleteKernel(ctx, name)
	})
	if err != nil {
		return err
	}
	err = kernel.Remove(s.layout.KernelsDir, name)
	switch {
	case !pulled && errdefs.KindOf(err) == errdefs.KindNotFound:
		return errdefs.NotFound("kernel %q is not pulled; run 'banger kernel list' to see local kernels", name)
	case !pulled && err != nil:
		return err
	case err != nil && errdefs.KindOf(err) != errdefs.KindNotFound:
		// The row is gone: the directory is litter that sweepKernels
		// removes at the next start.
		s.log.Warn("removing kernel files; they will be swept at next start", "kernel", name, "err", err)
	}
	msg := "kernel " + name + " removed"
	if !pulled {
		msg = "partial download of kernel " + name + " removed"
	}
	s.events.Event(ctx, "info", "kernel/"+name, msg)
	return nil
}

// sweepKernels removes kernel directories no row references (a crash
// between moving a pulled kernel into place and recording it) and
// staging leftovers; partial downloads are kept so pulls resume, until
// RemoveKernel discards them or they have waited stalePartial.
func (s *Service) sweepKernels(ctx context.Context) error {
	ks, err := s.store.Kernels(ctx)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, k := range ks {
		keep[k.Dir] = true
	}
	entries, err := os.ReadDir(s.layout.KernelsDir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.layout.KernelsDir, err)
	}
	for _, e := range entries {
		path := filepath.Join(s.layout.KernelsDir, e.Name())
		// Dot entries are the kernel package's own (partial downloads,
		// staging); CleanStaging below handles those.
		if keep[path] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("removing leftover %s: %w", path, err)
		}
		s.log.Info("removed leftover kernel directory", "path", path)
	}
	if gone, err := kernel.SweepPartials(s.layout.KernelsDir, stalePartial); err != nil {
		s.log.Warn("sweeping partial kernel downloads", "err", err)
	} else if len(gone) > 0 {
		s.log.Info("removed stale partial kernel downloads", "kernels", gone)
	}
	return kernel.CleanStaging(s.layout.KernelsDir)
}

// stalePartial is how long a partial kernel download waits for its pull
// to be resumed before the daemon's start-up sweep removes it.
const stalePartial = 7 * 24 * time.Hour
