package kernels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/kernel"
	"banger/internal/kerneloci"
	"banger/internal/progress"
	"banger/internal/store"
)

func (s *Service) ociOptions(insecure bool) kerneloci.Options {
	return kerneloci.Options{Transport: s.http.Transport, Insecure: insecure}
}

// PullKernelRef pulls a kernel published to an OCI registry, verifies it
// against the registry's digests and records it. A ref that is a plain
// name (no '/', ':' or '@') is a catalog kernel's.
func (s *Service) PullKernelRef(ctx context.Context, req api.KernelPullRequest, p progress.Func) (api.Kernel, error) {
	if !kerneloci.IsRef(req.Ref) {
		if req.Name != "" || req.Insecure {
			return api.Kernel{}, errdefs.Invalid("%q is a catalog kernel name; --name and --insecure are for kernels in a registry (REGISTRY/REPOSITORY:TAG)", req.Ref)
		}
		return s.PullKernel(ctx, req.Ref, p)
	}
	p.Step("resolve", "reading "+req.Ref)
	entry, client, byDigest, err := kerneloci.Resolve(ctx, req.Ref, req.Name, s.ociOptions(req.Insecure))
	if err != nil {
		return api.Kernel{}, err
	}
	release, err := s.claim(entry.Name, "pull")
	if err != nil {
		return api.Kernel{}, err
	}
	defer release()
	if _, err := s.store.Kernel(ctx, entry.Name); err == nil {
		return api.Kernel{}, errdefs.Conflict("kernel %q is already pulled; remove it first with 'banger kernel rm %s', or pull under another --name", entry.Name, entry.Name)
	}
	p.Step("pull", fmt.Sprintf("pulling kernel %s %s (%s) from %s", entry.Name, entry.Version, entry.Arch, byDigest))
	k, err := kernel.Pull(ctx, entry, kernel.PullOptions{Dir: s.layout.KernelsDir, Client: client, Progress: p, Source: byDigest})
	if err != nil {
		return api.Kernel{}, err
	}
	if err := s.store.Tx(ctx, func(tx *store.Tx) error { return tx.PutKernel(ctx, k) }); err != nil {
		os.RemoveAll(k.Dir)
		return api.Kernel{}, err
	}
	s.events.Event(ctx, "info", "kernel/"+k.Name, "kernel "+k.Name+" pulled from "+byDigest)
	return k, nil
}

// PublishKernel pushes a kernel to an OCI registry: the pulled kernel
// name, or, when req names a kernel file, those host files under name.
func (s *Service) PublishKernel(ctx context.Context, name string, req api.KernelPublishRequest, p progress.Func) (api.KernelPublished, error) {
	meta := kerneloci.Metadata{Name: name, Version: req.Version, Description: req.Description}
	files := kerneloci.Files{Kernel: req.Kernel, Initrd: req.Initrd, Modules: req.Modules, Fragment: req.Config}
	if req.Kernel == "" {
		k, err := s.Kernel(ctx, name)
		if err != nil {
			return api.KernelPublished{}, err
		}
		meta = kerneloci.Metadata{Name: k.Name, Version: k.Version, Arch: k.Arch, Description: k.Description}
		files = kerneloci.Files{Kernel: k.Kernel, Initrd: k.Initrd, Modules: k.Modules, Fragment: req.Config}
	} else {
		for flag, path := range map[string]string{"--kernel": req.Kernel, "--initrd": req.Initrd, "--modules": req.Modules, "--config": req.Config} {
			if path != "" && !filepath.IsAbs(path) {
				return api.KernelPublished{}, errdefs.Invalid("%s %q must be an absolute path", flag, path)
			}
		}
		if f, err := kernel.Format(req.Kernel); err != nil || f == "" {
			return api.KernelPublished{}, errdefs.Invalid("--kernel %s is not a kernel image (ELF vmlinux or bzImage): %v", req.Kernel, err)
		}
		if req.Version == "" {
			return api.KernelPublished{}, errdefs.Invalid("publishing kernel files needs --version")
		}
	}
	if err := kernel.CheckName(meta.Name); err != nil {
		return api.KernelPublished{}, err
	}
	ref, err := kerneloci.Publish(ctx, meta, files, req.Ref, s.ociOptions(req.Insecure), p)
	if err != nil {
		return api.KernelPublished{}, err
	}
	s.events.Event(ctx, "info", "kernel/"+meta.Name, "kernel "+meta.Name+" published to "+ref)
	return api.KernelPublished{Name: meta.Name, Ref: ref}, nil
}

// KernelTags lists the tags of a kernel repository in a registry.
func (s *Service) KernelTags(ctx context.Context, repo string, insecure bool) (api.KernelTags, error) {
	tags, err := kerneloci.Tags(ctx, repo, s.ociOptions(insecure))
	if err != nil {
		return api.KernelTags{}, err
	}
	return api.KernelTags{Repository: repo, Tags: tags}, nil
}
