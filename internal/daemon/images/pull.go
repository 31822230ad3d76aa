package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/image"
	"banger/internal/imagepull"
	"banger/internal/progress"
	"banger/internal/store"
)

// PullImage turns an OCI image from a registry into a managed image
// booting a catalog kernel (or copied host kernel files). The rootfs is
// built in a staging directory under the images directory and renamed
// into place before the row is written, so a failed or canceled pull
// leaves neither a partial directory nor a row (and a crash leaves only
// a directory the startup sweep removes). Pulling a digest that an image
// already holds returns that image at once (progress step "present").
func (s *Service) PullImage(ctx context.Context, req api.PullImageRequest, p progress.Func) (api.Image, error) {
	defer s.useCaches(p)()
	return s.pullImage(ctx, req, p)
}

// PullHeld is PullImage for a caller that holds the caches (HoldCaches).
func (s *Service) PullHeld(ctx context.Context, req api.PullImageRequest, p progress.Func) (api.Image, error) {
	return s.pullImage(ctx, req, p)
}

// pullImage is PullImage for a caller that holds the caches (useCaches).
func (s *Service) pullImage(ctx context.Context, req api.PullImageRequest, p progress.Func) (api.Image, error) {
	k, err := s.pullKernel(ctx, &req)
	if err != nil {
		return api.Image{}, err
	}
	name := req.Name
	if name == "" {
		name = imagepull.DefaultName(req.Ref)
	}
	if err := image.ValidateName("image", name); err != nil {
		return api.Image{}, err
	}
	release, err := s.claim("image/"+name, "pull")
	if err != nil {
		return api.Image{}, err
	}
	defer release()

	puller, err := imagepull.New(imagepull.Options{CacheDir: s.layout.OCICacheDir, Transport: s.http.Transport})
	if err != nil {
		return api.Image{}, err
	}
	p.Step("resolve", "resolving "+req.Ref)
	r, err := puller.Resolve(ctx, req.Ref, imagepull.ResolveOptions{Platform: req.Platform, Insecure: req.Insecure})
	if err != nil {
		return api.Image{}, err
	}
	if im, ok, err := s.alreadyPulled(ctx, name, req.Name != "", r.Digest.String()); err != nil || ok {
		if ok {
			p.Emit(api.Event{Step: "present", Message: fmt.Sprintf("image %s already holds %s (%s); nothing to pull", im.Name, req.Ref, im.Digest)})
		}
		return im, err
	}
	p.Step("fetch", fmt.Sprintf("pulling %s (%s, %s)", req.Ref, r.Digest, r.PlatformName()))
	img, err := puller.Fetch(ctx, r, p)
	if err != nil {
		return api.Image{}, err
	}
	im, err := s.buildPulled(ctx, name, req, k, img, p)
	if err != nil {
		return api.Image{}, fmt.Errorf("building image %q: %w", name, err)
	}
	err = s.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Image(ctx, name); err == nil {
			return errdefs.Conflict("image %q was created while pulling; delete it with 'banger image delete %s' and pull again", name, name)
		}
		if k != nil {
			// 'banger kernel rm' checks for images in its own transaction.
			if _, err := tx.Kernel(ctx, k.Name); err != nil {
				return errdefs.Conflict("kernel %q was removed while pulling; pull it again with 'banger kernel pull %s' and retry", k.Name, k.Name)
			}
		}
		return tx.PutImage(ctx, im)
	})
	if err != nil {
		os.RemoveAll(im.Dir)
		return api.Image{}, err
	}
	s.events.Event(ctx, "info", "image/"+name, fmt.Sprintf("image %s pulled from %s (%s)", name, req.Ref, im.Digest))
	return s.Image(ctx, name)
}

// alreadyPulled finds an image holding digest: the one named name, or,
// when the user gave no name, any. An image of that name holding another
// digest is a conflict.
func (s *Service) alreadyPulled(ctx context.Context, name string, named bool, digest string) (api.Image, bool, error) {
	ims, err := s.store.Images(ctx)
	if err != nil {
		return api.Image{}, false, err
	}
	for _, im := range ims {
		if im.Name == name {
			if im.Digest == digest {
				return im, true, nil
			}
			return api.Image{}, false, errdefs.Conflict("image %q already exists (source %s, digest %s); delete it with 'banger image delete %s' or pick another --name",
				name, im.Source, orNone(im.Digest), name)
		}
	}
	if !named {
		for _, im := range ims {
			if im.Digest == digest && im.Source == "pull" {
				return im, true, nil
			}
		}
	}
	return api.Image{}, false, nil
}

// buildPulled builds the image directory: rootfs, kernel files (unless a
// catalog kernel is referenced) and manifest, in staging, then renamed.
func (s *Service) buildPulled(ctx context.Context, name string, req api.PullImageRequest, k *api.Kernel, img *imagepull.Image, p progress.Func) (api.Image, error) {
	suffix := fsutil.RandomHex()
	staging := filepath.Join(s.layout.ImagesDir, ".staging-pull-"+name+"-"+suffix)
	final := filepath.Join(s.layout.ImagesDir, name+"-"+suffix)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return api.Image{}, fmt.Errorf("creating staging directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(staging)
		}
	}()
	res, err := imagepull.Build(ctx, img.Layers, imagepull.BuildOptions{Dir: staging, Size: req.Size, Extra: s.guestFiles(), Progress: p})
	if err != nil {
		return api.Image{}, err
	}
	im := api.Image{
		Name: name, Managed: true, Dir: final, Rootfs: filepath.Join(final, image.RootfsFile),
		Source: "pull", Digest: img.Info.Digest, Size: res.Size,
	}
	if res.Path != filepath.Join(staging, image.RootfsFile) {
		return api.Image{}, fmt.Errorf("rootfs built at %s, expected %s", res.Path, image.RootfsFile)
	}
	if k != nil {
		im.KernelRef, im.Kernel, im.Initrd, im.Modules = k.Name, k.Kernel, k.Initrd, k.Modules
	} else if err := copyKernelFiles(ctx, req, staging, final, &im, p); err != nil {
		return api.Image{}, err
	}
	im.Tools, im.ToolVersions = s.detectTools(ctx, api.Image{Name: name, Rootfs: res.Path})
	info := img.Info
	info.ContentSize, info.RootfsSize, info.Files = res.Content, res.Size, res.Files
	if err := writePullManifest(staging, im, info); err != nil {
		return api.Image{}, err
	}
	if err := fsutil.SyncDir(staging); err != nil {
		return api.Image{}, err
	}
	if err := os.Rename(staging, final); err != nil {
		return api.Image{}, fmt.Errorf("moving image into place: %w", err)
	}
	done = true
	if err := fsutil.SyncDir(s.layout.ImagesDir); err != nil {
		os.RemoveAll(final)
		return api.Image{}, err
	}
	return im, nil
}

// copyKernelFiles copies --kernel, --initrd and --modules into the
// staging directory; im gets their final paths.
func copyKernelFiles(ctx context.Context, req api.PullImageRequest, staging, final string, im *api.Image, p progress.Func) error {
	for _, f := range []struct {
		src  string
		name string
		dst  *string
	}{{req.Kernel, image.KernelFile, &im.Kernel}, {req.Initrd, image.InitrdFile, &im.Initrd}} {
		if f.src == "" {
			continue
		}
		total, err := disk.DataSize(f.src)
		if err != nil {
			return fmt.Errorf("sizing %s: %w", f.src, err)
		}
		c := progress.NewCounter(p, "copy", f.name, total)
		if _, err := disk.Copy(ctx, f.src, filepath.Join(staging, f.name), disk.WithProgress(c)); err != nil {
			return err
		}
		c.Done()
		*f.dst = filepath.Join(final, f.name)
	}
	if req.Modules != "" {
		p.Step("copy", "copying "+image.ModulesDir)
		if err := disk.CopyTree(ctx, req.Modules, filepath.Join(staging, image.ModulesDir)); err != nil {
			return err
		}
		im.Modules = filepath.Join(final, image.ModulesDir)
	}
	return nil
}

// pullManifest is manifest.json of a pulled image: the image record plus
// where it came from and what its OCI config says.
type pullManifest struct {
	api.Image
	Pull api.PullInfo `json:"pull"`
}

func writePullManifest(dir string, im api.Image, info api.PullInfo) error {
	data, err := json.MarshalIndent(pullManifest{Image: im, Pull: info}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, image.ManifestFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing manifest: %w", err)
	}
	return f.Close()
}

// pullKernel resolves what the pulled image boots: --kernel-ref, else
// default_kernel_ref, else host files. It checks everything before any
// network traffic so a missing kernel fails fast.
func (s *Service) pullKernel(ctx context.Context, req *api.PullImageRequest) (*api.Kernel, error) {
	if req.KernelRef != "" && req.Kernel != "" {
		return nil, errdefs.Invalid("--kernel and --kernel-ref are exclusive; pass one of them")
	}
	if req.KernelRef != "" && (req.Initrd != "" || req.Modules != "") {
		return nil, errdefs.Invalid("--initrd and --modules come from the kernel with --kernel-ref; drop them or use --kernel")
	}
	if req.Kernel == "" {
		if req.Initrd != "" || req.Modules != "" {
			return nil, errdefs.Invalid("--initrd and --modules need --kernel; pass the kernel too, or use --kernel-ref")
		}
		ref, from := req.KernelRef, "--kernel-ref"
		if ref == "" {
			ref, from = s.cfg.DefaultKernelRef, "default_kernel_ref in "+s.layout.ConfigFile
		}
		if ref == "" {
			return nil, errdefs.Invalid("a kernel is needed to boot the image: pass --kernel-ref NAME (see 'banger kernel list'; get one with 'banger kernel pull NAME'), " +
				"set default_kernel_ref in the config, or pass host files with --kernel PATH [--initrd PATH] [--modules DIR]")
		}
		k, err := s.kernels.Kernel(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		return &k, nil
	}
	if err := image.CheckKernel("--kernel", req.Kernel); err != nil {
		return nil, err
	}
	if req.Initrd != "" {
		if err := checkHostFile("--initrd", req.Initrd); err != nil {
			return nil, err
		}
	}
	if req.Modules != "" {
		if err := image.CheckDir("--modules", req.Modules); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func checkHostFile(flag, path string) error {
	if !filepath.IsAbs(path) {
		return errdefs.Invalid("%s %q must be an absolute path", flag, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return errdefs.Invalid("%s %s: %v", flag, path, err)
	}
	if !fi.Mode().IsRegular() {
		return errdefs.Invalid("%s %s is not a regular file", flag, path)
	}
	return nil
}

// guestFiles are added to every pulled rootfs in the same pass that
// writes it. The guest agent (binary and unit) plugs in here.
func (s *Service) guestFiles() []imagepull.ExtraFile { return nil }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
