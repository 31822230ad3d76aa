package imagepull

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/progress"
)

// Image is a pulled image whose config and layers are all in the cache.
type Image struct {
	Info   api.PullInfo
	Layers []Layer
}

// Layer is one cached layer blob: a tar, optionally gzip or zstd
// compressed.
type Layer struct {
	Digest string // sha256:...
	Size   int64  // compressed bytes
	Path   string // the blob file
}

// Fetch makes sure the config and every layer of r are in the cache,
// downloading only what is missing (Jobs at a time, with per-layer
// progress: step "download", Item the short layer digest), and returns
// the image. It fails before any download when the missing blobs would
// not fit in the cache's filesystem, and a blob whose registry sends
// more than the manifest's size fails as soon as the excess arrives. A
// canceled or failed fetch leaves only complete blobs.
func (p *Puller) Fetch(ctx context.Context, r *Remote, prog progress.Func) (*Image, error) {
	if err := p.checkSpace(r); err != nil {
		return nil, err
	}
	cfg, err := p.fetchConfig(ctx, r)
	if err != nil {
		return nil, err
	}
	if cfg.OS != "" && cfg.OS != "linux" || cfg.Architecture != "" && cfg.Architecture != r.Platform.Architecture {
		return nil, errdefs.Invalid("%s is a %s/%s image; this host boots %s images", r.Ref, cfg.OS, cfg.Architecture, platformString(r.Platform))
	}
	img := &Image{Info: api.PullInfo{
		Ref: r.Ref, Resolved: r.Resolved.String(), IndexDigest: r.IndexDigest, Digest: r.Digest.String(),
		ConfigDigest: r.Manifest.Config.Digest.String(), Platform: platformString(r.Platform),
		Config: imageConfig(cfg),
	}}
	for _, l := range r.Manifest.Layers {
		if err := checkLayerType(r.Ref, l); err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Layer{Digest: l.Digest.String(), Size: l.Size, Path: p.cache.BlobPath(l.Digest)})
		img.Info.Layers = append(img.Info.Layers, api.PullLayer{Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size})
		img.Info.CompressedSize += l.Size
	}
	if err := p.fetchLayers(ctx, r, prog); err != nil {
		return nil, err
	}
	if err := p.cache.PutBytes(ctx, r.Digest, r.raw); err != nil {
		return nil, err
	}
	desc := v1.Descriptor{MediaType: r.MediaType, Size: int64(len(r.raw)), Digest: r.Digest, Platform: &r.Platform}
	if err := p.cache.Record(desc, r.Ref); err != nil {
		return nil, err
	}
	return img, nil
}

// maxConfigSize bounds an image config, which is read into memory;
// real ones are a few KiB.
const maxConfigSize = 16 << 20

// checkSpace rejects blob sizes no image has and, before anything is
// downloaded, makes sure the blobs missing from the cache fit on its
// filesystem, so a manifest claiming a huge layer fails at once rather
// than after filling the disk.
func (p *Puller) checkSpace(r *Remote) error {
	if cs := r.Manifest.Config.Size; cs > maxConfigSize {
		return errdefs.Invalid("%s: the manifest says its config is %s, more than the %s banger reads; this is not a usable image", r.Ref, bytesize.Format(cs), bytesize.Format(maxConfigSize))
	}
	var need int64
	seen := map[v1.Hash]bool{}
	for _, d := range append([]v1.Descriptor{r.Manifest.Config}, r.Manifest.Layers...) {
		if d.Size < 0 {
			return errdefs.Invalid("%s: the manifest gives blob %s a negative size (%d); the image is corrupt", r.Ref, d.Digest, d.Size)
		}
		if seen[d.Digest] || p.cache.Has(d.Digest, d.Size) {
			continue
		}
		seen[d.Digest] = true
		need = min(need, math.MaxInt64-d.Size) + d.Size // saturates
	}
	free, err := freeSpace(p.cache.Dir())
	if err != nil {
		return err
	}
	if room := free - keepFree(free); need > room {
		return errdefs.Invalid("%s needs %s of blobs in the image cache %s, but only %s is free there (less a reserve of %s); free some space under %s and pull again",
			r.Ref, bytesize.Format(need), p.cache.Dir(), bytesize.Format(max(room, 0)), bytesize.Format(keepFree(free)), p.cache.Dir())
	}
	return nil
}

func (p *Puller) fetchConfig(ctx context.Context, r *Remote) (*v1.ConfigFile, error) {
	d := r.Manifest.Config
	if !p.cache.Has(d.Digest, d.Size) {
		if err := p.fetchBlob(ctx, r, d, nil); err != nil {
			return nil, err
		}
	}
	raw, err := p.cache.ReadBlob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.Invalid("%s: reading image config: %v", r.Ref, err)
	}
	return cfg, nil
}

func (p *Puller) fetchLayers(ctx context.Context, r *Remote, prog progress.Func) error {
	var missing []v1.Descriptor
	for _, l := range r.Manifest.Layers {
		if p.cache.Has(l.Digest, l.Size) {
			prog.Emit(api.Event{Step: "cached", Item: shortDigest(l.Digest), Current: l.Size, Total: l.Size, Done: true})
			continue
		}
		missing = append(missing, l)
	}
	return forEach(ctx, len(missing), p.opts.Jobs, func(ctx context.Context, i int) error {
		l := missing[i]
		c := progress.NewCounter(prog, "download", shortDigest(l.Digest), l.Size)
		if err := p.fetchBlob(ctx, r, l, c); err != nil {
			return err
		}
		c.Done()
		return nil
	})
}

// fetchBlob downloads one blob into the cache, counting bytes on c.
func (p *Puller) fetchBlob(ctx context.Context, r *Remote, d v1.Descriptor, c *progress.Counter) error {
	l, err := r.puller.Layer(ctx, r.Resolved.Context().Digest(d.Digest.String()))
	if err != nil {
		return RegistryError(r.Resolved, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return RegistryError(r.Resolved, err)
	}
	defer rc.Close()
	var src io.Reader = rc
	if c != nil {
		src = c.Reader(rc)
	}
	if err := p.cache.Put(ctx, d.Digest, d.Size, src); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return RegistryError(r.Resolved, err)
	}
	return nil
}

func checkLayerType(ref string, l v1.Descriptor) error {
	switch l.MediaType {
	case types.DockerForeignLayer:
		return errdefs.Unsupported("%s has a foreign (Windows) layer %s; banger pulls Linux images", ref, l.Digest)
	case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, "":
		return nil
	}
	return errdefs.Unsupported("%s: layer %s has media type %s, which is not a filesystem layer; banger pulls container images", ref, l.Digest, l.MediaType)
}

func imageConfig(cfg *v1.ConfigFile) api.ImageConfig {
	c := cfg.Config
	return api.ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User, StopSignal: c.StopSignal}
}
