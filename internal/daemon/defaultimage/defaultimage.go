package defaultimage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/config"
	"banger/internal/debianfs"
	"banger/internal/debkernel"
	"banger/internal/debootstrap"
	"banger/internal/progress"
)

// registryProbeTimeout bounds the check that picks the default image's
// source.
const registryProbeTimeout = 5 * time.Second

// Ensure returns image name, making it first when it is
// missing: a kernel that suits the VMM, and a Debian devbox rootfs, from
// an OCI pull and an image build when a registry answers, else from the
// host's Debian mirror with debootstrap. It is made once; later calls
// find it registered.
func (s *Maker) Ensure(ctx context.Context, imName string, p progress.Func) (api.Image, error) {
	release, err := s.claim(imName)
	if err != nil {
		return api.Image{}, err
	}
	defer release()
	if im, err := s.images.Image(ctx, imName); err == nil {
		return im, nil
	}
	// Held once for everything below: the pull and the build inside do not
	// take it again.
	defer s.images.HoldCaches(p)()
	source := s.cfg.DefaultImageSource
	if source == config.DefaultImageAuto && debianfs.Present(s.preparedRootfs()) {
		source = config.DefaultImageDebootstrap
		p.Step("default", fmt.Sprintf("image %q is not registered; making it once from the prepared Debian root filesystem", imName))
	} else if source == config.DefaultImageAuto {
		if err := probeRegistry(ctx, s.cfg.DefaultImageRef); err != nil {
			source = config.DefaultImageDebootstrap
			p.Step("default", fmt.Sprintf("image %q is not registered; making it once. The registry of %s did not answer (%v): building Debian with debootstrap from %s",
				imName, s.cfg.DefaultImageRef, err, s.mirror()))
		} else {
			source = config.DefaultImageOCI
			p.Step("default", fmt.Sprintf("image %q is not registered; making it once from %s", imName, s.cfg.DefaultImageRef))
		}
	} else {
		p.Step("default", fmt.Sprintf("image %q is not registered; making it once (default_image_source = %q)", imName, source))
	}
	t0 := time.Now()
	var im api.Image
	if source == config.DefaultImageOCI {
		im, err = s.defaultFromOCI(ctx, imName, p)
	} else {
		im, err = s.defaultFromDebootstrap(ctx, imName, p)
	}
	if err != nil {
		return api.Image{}, fmt.Errorf("making the default image %q: %w", imName, err)
	}
	s.events.Event(ctx, "info", "image/"+imName, fmt.Sprintf("default image %s made from %s in %s", imName, source, time.Since(t0).Round(time.Second)))
	return im, nil
}

func (s *Maker) mirror() string {
	if s.cfg.DebianMirror != "" {
		return s.cfg.DebianMirror
	}
	return debootstrap.AptMirror()
}

// probeRegistry checks that ref's registry answers its API endpoint
// (any HTTP answer, even 401, means it is reachable).
func probeRegistry(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, registryProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", r.Context().Registry.Scheme()+"://"+r.Context().RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the cause, without the method and URL
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// kernelFiles is what the default image boots with: its files, and Ref
// when they are a catalog kernel's.
type kernelFiles struct {
	Ref                     string
	Kernel, Initrd, Modules string
}

// defaultKernel finds a kernel for the default image. Firecracker boots
// an uncompressed vmlinux from the catalog (default_kernel_ref); QEMU
// boots the host distribution's Debian cloud kernel, fetched once with
// apt-get into the cache.
func (s *Maker) defaultKernel(ctx context.Context, p progress.Func) (kernelFiles, error) {
	if s.vmm == config.VMMFirecracker {
		ref := s.cfg.DefaultKernelRef
		if ref == "" {
			return kernelFiles{}, errdefs.Invalid("the default image needs a Firecracker kernel: set default_kernel_ref in %s to a catalog kernel (see 'banger kernel list --available'), "+
				"or build one with scripts/build-firecracker-kernel and register an image with it", s.layout.ConfigFile)
		}
		k, err := s.kernels.Kernel(ctx, ref)
		if errors.Is(err, errdefs.ErrNotFound) {
			k, err = s.kernels.PullKernel(ctx, ref, p)
		}
		if err != nil {
			return kernelFiles{}, err
		}
		return kernelFiles{Ref: ref, Kernel: k.Kernel, Initrd: k.Initrd, Modules: k.Modules}, nil
	}
	dir := filepath.Join(s.layout.CacheDir, "debian-kernel")
	k, err := debkernel.Load(dir)
	if err != nil {
		p.Step("kernel", "fetching the Debian cloud kernel with apt-get (first use only)")
		os.RemoveAll(dir)
		k, err = debkernel.Fetch(ctx, dir, debkernel.Options{Progress: func(msg string) { p.Step("kernel", msg) }})
		if err != nil {
			return kernelFiles{}, err
		}
	}
	return kernelFiles{Kernel: k.Vmlinuz, Initrd: k.Initrd, Modules: k.Modules}, nil
}

// defaultFromOCI pulls default_image_ref as NAME-base and builds NAME
// from it with the devbox steps.
func (s *Maker) defaultFromOCI(ctx context.Context, imName string, p progress.Func) (api.Image, error) {
	k, err := s.defaultKernel(ctx, p)
	if err != nil {
		return api.Image{}, err
	}
	baseName := imName + "-base"
	if _, err := s.images.Image(ctx, baseName); errors.Is(err, errdefs.ErrNotFound) {
		req := api.PullImageRequest{Ref: s.cfg.DefaultImageRef, Name: baseName, KernelRef: k.Ref}
		if k.Ref == "" { // host files; a catalog kernel is named, not copied
			req.Kernel, req.Initrd, req.Modules = k.Kernel, k.Initrd, k.Modules
		}
		if _, err := s.images.PullHeld(ctx, req, p); err != nil {
			return api.Image{}, err
		}
	} else if err != nil {
		return api.Image{}, err
	}
	// Best effort: a tool whose download fails must not fail a first vm run.
	out, err := s.images.BuildHeld(ctx, api.BuildImageRequest{Name: imName, From: baseName, BestEffort: true}, p)
	if err != nil {
		return api.Image{}, err
	}
	return out.Image, nil
}

// defaultFromDebootstrap stores the Debian devbox root filesystem as
// image NAME: the one 'banger system setup --default-rootfs' prepared, or
// one built now (debianfs.Build, which needs root).
func (s *Maker) defaultFromDebootstrap(ctx context.Context, imName string, p progress.Func) (api.Image, error) {
	prepared := s.preparedRootfs()
	if !debianfs.Present(prepared) && os.Geteuid() != 0 {
		return api.Image{}, errdefs.Invalid("no registry answered for %s, and building Debian with debootstrap needs root: "+
			"run 'sudo \"$(command -v banger)\" system setup --default-rootfs' once (it builds it for you), make a registry reachable, "+
			"or register an image and set default_image_name in %s", s.cfg.DefaultImageRef, s.layout.ConfigFile)
	}
	k, err := s.defaultKernel(ctx, p)
	if err != nil {
		return api.Image{}, err
	}
	if !debianfs.Present(prepared) {
		if err := debianfs.Build(ctx, prepared, debianfs.Options{Mirror: s.cfg.DebianMirror}, p); err != nil {
			return api.Image{}, err
		}
	} else {
		p.Step("default", "using the root filesystem prepared by 'banger system setup --default-rootfs'")
	}
	im := api.Image{Name: imName, Rootfs: filepath.Join(prepared, debianfs.RootfsFile), WorkSeed: filepath.Join(prepared, debianfs.WorkSeedFile),
		KernelRef: k.Ref, Kernel: k.Kernel, Initrd: k.Initrd, Modules: k.Modules, Source: "debootstrap"}
	stored, err := s.images.Store(ctx, im, p)
	if err != nil {
		return api.Image{}, err
	}
	// The image has its own copy now.
	if err := os.RemoveAll(prepared); err != nil {
		s.log.Warn("removing the prepared root filesystem", "dir", prepared, "err", err)
	}
	return stored, nil
}

func (s *Maker) preparedRootfs() string { return debianfs.PreparedDir(s.layout.CacheDir) }
