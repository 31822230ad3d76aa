package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/image"
	"banger/internal/progress"
	"banger/internal/store"
)

// Images lists registered images.
func (s *Service) Images(ctx context.Context) ([]api.Image, error) {
	return s.store.Images(ctx)
}

// Image returns one image.
func (s *Service) Image(ctx context.Context, name string) (api.Image, error) {
	return getImage(ctx, &s.store.Reader, name)
}

func getImage(ctx context.Context, tx *store.Reader, name string) (api.Image, error) {
	im, err := tx.Image(ctx, name)
	if errors.Is(err, store.ErrNoRow) {
		return api.Image{}, errdefs.NotFound("image %q not found; run 'banger image list' to see registered images", name)
	}
	return im, err
}

// RegisterImage records an unmanaged image that references host files.
func (s *Service) RegisterImage(ctx context.Context, req api.RegisterImageRequest) (api.Image, error) {
	if req.KernelRef != "" {
		if req.Kernel != "" {
			return api.Image{}, errdefs.Invalid("--kernel and --kernel-ref are exclusive; pass one of them")
		}
		k, err := s.kernels.Kernel(ctx, req.KernelRef)
		if err != nil {
			return api.Image{}, err
		}
		if req.Initrd != "" || req.Modules != "" {
			return api.Image{}, errdefs.Invalid("--initrd and --modules come from the kernel with --kernel-ref; drop them or use --kernel")
		}
		req.Kernel, req.Initrd, req.Modules = k.Kernel, k.Initrd, k.Modules
	}
	if err := image.CheckRegister(req); err != nil {
		return api.Image{}, err
	}
	im := api.Image{
		Name: req.Name, Rootfs: req.Rootfs, WorkSeed: req.WorkSeed, Kernel: req.Kernel,
		Initrd: req.Initrd, Modules: req.Modules, KernelRef: req.KernelRef,
		Source: "register", Size: image.ApparentSize(req.Rootfs),
	}
	im.Tools, im.ToolVersions = s.detectTools(ctx, im)
	err := s.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Image(ctx, req.Name); err == nil {
			return errdefs.Conflict("image %q already exists; pick another --name or delete it with 'banger image delete %s'", req.Name, req.Name)
		}
		return tx.PutImage(ctx, im)
	})
	if err != nil {
		return api.Image{}, err
	}
	s.events.Event(ctx, "info", "image/"+im.Name, "image "+im.Name+" registered")
	return s.Image(ctx, im.Name)
}

// PromoteImage copies an unmanaged image's files into a daemon-owned
// directory. The database row is switched only after the directory is
// complete, so a crash leaves either the old row or the new one, and the
// next start sweeps any unreferenced directory.
func (s *Service) PromoteImage(ctx context.Context, name string, p progress.Func) (api.Image, error) {
	release, err := s.claim("image/"+name, "promote")
	if err != nil {
		return api.Image{}, err
	}
	defer release()
	im, err := s.Image(ctx, name)
	if err != nil {
		return api.Image{}, err
	}
	if im.Managed {
		return api.Image{}, errdefs.Conflict("image %q is already managed (files in %s)", name, im.Dir)
	}
	p.Step("promote", fmt.Sprintf("copying image %s into %s", name, s.layout.ImagesDir))
	out, err := image.Promote(ctx, im, s.layout.ImagesDir, p)
	if err != nil {
		return api.Image{}, fmt.Errorf("promoting image %q: %w", name, err)
	}
	out.Source = "promote"
	err = s.store.Tx(ctx, func(tx *store.Tx) error {
		cur, err := getImage(ctx, &tx.Reader, name)
		if err != nil {
			return err
		}
		if cur.Managed {
			return errdefs.Conflict("image %q was promoted concurrently", name)
		}
		return tx.PutImage(ctx, out)
	})
	if err != nil {
		os.RemoveAll(out.Dir)
		return api.Image{}, err
	}
	s.events.Event(ctx, "info", "image/"+name, "image "+name+" promoted to "+out.Dir)
	return out, nil
}

// DeleteImage removes an image record and, for a managed image, its
// directory. The row goes first: a crash in between leaves an
// unreferenced directory, which the next start sweeps.
func (s *Service) DeleteImage(ctx context.Context, name string, force bool) error {
	release, err := s.claim("image/"+name, "delete")
	if err != nil {
		return err
	}
	defer release()
	var im api.Image
	err = s.store.Tx(ctx, func(tx *store.Tx) error {
		im, err = getImage(ctx, &tx.Reader, name)
		if err != nil {
			return err
		}
		users, err := tx.VMsUsingImage(ctx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 && !force {
			return errdefs.Conflict("image %q is used by vm(s) %s; delete them first or pass --force", name, strings.Join(users, ", "))
		}
		return tx.DeleteImage(ctx, name)
	})
	if err != nil {
		return err
	}
	if im.Managed && im.Dir != "" {
		if err := os.RemoveAll(im.Dir); err != nil {
			s.log.Warn("removing image directory; it will be swept at next start", "dir", im.Dir, "err", err)
		}
	}
	s.events.Event(ctx, "info", "image/"+name, "image "+name+" deleted")
	return nil
}

func (s *Service) sweepImages(ctx context.Context) error {
	ims, err := s.store.Images(ctx)
	if err != nil {
		return err
	}
	keep := map[string]bool{s.layout.TemplatesDir: true} // the VM manager's
	for _, im := range ims {
		if im.Managed {
			keep[im.Dir] = true
		}
	}
	removed, err := image.Sweep(s.layout.ImagesDir, keep)
	for _, r := range removed {
		s.log.Info("removed leftover image directory", "path", r)
	}
	return err
}

// Store copies im's files into a new managed image of its name, which
// must be free, claiming the name meanwhile.
func (s *Service) Store(ctx context.Context, im api.Image, p progress.Func) (api.Image, error) {
	release, err := s.claim("image/"+im.Name, "store")
	if err != nil {
		return api.Image{}, err
	}
	defer release()
	return s.storeImage(ctx, im, p)
}

// storeImage copies im's files into a new managed directory and registers
// it under im.Name, which must still be free. The caller holds the
// image's claim. On failure nothing is left: no directory, no row.
func (s *Service) storeImage(ctx context.Context, im api.Image, p progress.Func) (api.Image, error) {
	p.Step("store", "storing image "+im.Name)
	if im.Tools == nil {
		im.Tools, im.ToolVersions = s.detectTools(ctx, im)
	}
	stored, err := image.Promote(ctx, im, s.layout.ImagesDir, p)
	if err != nil {
		return api.Image{}, fmt.Errorf("storing image %q: %w", im.Name, err)
	}
	err = s.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Image(ctx, im.Name); err == nil {
			return errdefs.Conflict("image %q was created concurrently", im.Name)
		}
		return tx.PutImage(ctx, stored)
	})
	if err != nil {
		os.RemoveAll(stored.Dir)
		return api.Image{}, err
	}
	return stored, nil
}

// Bootable returns the image a VM boots and checks its files are there.
func (s *Service) Bootable(ctx context.Context, name string) (api.Image, error) {
	im, err := s.Image(ctx, name)
	if err != nil {
		return api.Image{}, err
	}
	if err := image.CheckExt4("image rootfs", im.Rootfs); err != nil {
		return api.Image{}, fmt.Errorf("image %q cannot boot: %w", name, err)
	}
	return im, nil
}

// detectTools lists the devbox tools in im's rootfs for the image record,
// with the versions its devbox record names for them; nil (unknown) when
// the rootfs cannot be read, which is not worth failing the image for.
func (s *Service) detectTools(ctx context.Context, im api.Image) ([]string, map[string]string) {
	tools, err := image.DetectTools(ctx, im.Rootfs)
	if err != nil {
		s.log.Warn("looking for devbox tools in the image", "image", im.Name, "err", err)
		return nil, nil
	}
	recorded, err := image.DetectToolVersions(ctx, im.Rootfs)
	if err != nil {
		s.log.Warn("reading the devbox tools record of the image", "image", im.Name, "err", err)
	}
	var versions map[string]string
	for _, t := range tools {
		if v := recorded[t]; v != "" {
			if versions == nil {
				versions = map[string]string{}
			}
			versions[t] = v
		}
	}
	return tools, versions
}
