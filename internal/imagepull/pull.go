package imagepull

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/progress"
	"banger/internal/version"
)

// Options configure a Puller. CacheDir is required.
type Options struct {
	// CacheDir is the OCI layout holding blobs (paths.Layout.OCICacheDir).
	CacheDir string
	// Keychain finds registry credentials; nil means the user's docker
	// config (authn.DefaultKeychain: $DOCKER_CONFIG or ~/.docker).
	Keychain authn.Keychain
	// Transport carries registry requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Jobs is how many layers download at once; 0 means 3.
	Jobs int
}

// Puller resolves images in registries and fetches their blobs into the
// cache. It is safe for concurrent use.
type Puller struct {
	cache *Cache
	opts  Options
}

// New opens the cache and returns a Puller.
func New(opts Options) (*Puller, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("imagepull: CacheDir is required")
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = remote.DefaultTransport
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 3
	}
	c, err := OpenCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	return &Puller{cache: c, opts: opts}, nil
}

// Cache is the puller's blob cache.
func (p *Puller) Cache() *Cache { return p.cache }

// ResolveOptions are the optional parts of a Resolve.
type ResolveOptions struct {
	Platform string // os/arch[/variant]; "" means linux on the host's arch
	Insecure bool   // plain HTTP / unverified TLS, loopback and private registries only
}

// Remote is an image resolved in its registry: its manifest is known,
// its blobs are not fetched yet.
type Remote struct {
	Ref         string      // as the caller wrote it
	Resolved    name.Digest // repository@digest of the image manifest
	Digest      v1.Hash     // image manifest digest
	IndexDigest string      // set when Ref named a multi-platform index
	Platform    v1.Platform
	Manifest    *v1.Manifest
	MediaType   types.MediaType
	raw         []byte
	puller      *remote.Puller
}

// Resolve finds the image manifest for ref and the wanted platform. It
// fetches manifests only, so checking whether a digest is already pulled
// costs one or two small requests.
func (p *Puller) Resolve(ctx context.Context, ref string, o ResolveOptions) (*Remote, error) {
	r, err := parseRef(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	plat, err := parsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	tr := p.opts.Transport
	if o.Insecure {
		tr = insecureTransport(tr)
	}
	pl, err := remote.NewPuller(remote.WithAuthFromKeychain(p.opts.Keychain), remote.WithTransport(tr),
		remote.WithPlatform(plat), remote.WithUserAgent("banger/"+version.Version))
	if err != nil {
		return nil, err
	}
	desc, err := pl.Get(ctx, r)
	if err != nil {
		return nil, registryError(r, err)
	}
	out := &Remote{Ref: ref, Platform: plat, puller: pl}
	if desc.MediaType.IsIndex() {
		out.IndexDigest = desc.Digest.String()
		child, err := pickPlatform(r, desc.Manifest, plat)
		if err != nil {
			return nil, err
		}
		if desc, err = pl.Get(ctx, r.Context().Digest(child.String())); err != nil {
			return nil, registryError(r, err)
		}
	}
	if desc.MediaType.IsSchema1() {
		return nil, errdefs.Unsupported("%s is a Docker schema 1 image, which banger cannot read; rebuild or re-push it with a current docker or buildah", ref)
	}
	if desc.MediaType.IsIndex() {
		return nil, errdefs.Unsupported("%s: index nested in an index; pull the image by its digest", ref)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("reading manifest of %s: %w", ref, err)
	}
	out.Digest, out.Manifest, out.MediaType, out.raw = desc.Digest, m, desc.MediaType, desc.Manifest
	out.Resolved = r.Context().Digest(desc.Digest.String())
	if !m.Config.MediaType.IsConfig() && m.Config.MediaType != "" {
		return nil, errdefs.Unsupported("%s is not a container image (its config is %s); banger pulls container images", ref, m.Config.MediaType)
	}
	return out, nil
}

// pickPlatform chooses the index entry for plat, or explains what the
// index offers.
func pickPlatform(r name.Reference, raw []byte, plat v1.Platform) (v1.Hash, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading index of %s: %w", r, err)
	}
	var offered []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.Satisfies(plat) && m.MediaType.IsImage() {
			return m.Digest, nil
		}
		if m.Platform.OS != "unknown" { // attestation manifests
			offered = append(offered, platformString(*m.Platform))
		}
	}
	return v1.Hash{}, errdefs.NotFound("%s has no %s image (it offers %v); banger boots images natively, so pick an image built for this host", r, platformString(plat), offered)
}

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
// the image. A canceled or failed fetch leaves only complete blobs.
func (p *Puller) Fetch(ctx context.Context, r *Remote, prog progress.Func) (*Image, error) {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, p.opts.Jobs)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, l := range r.Manifest.Layers {
		item := shortDigest(l.Digest)
		if p.cache.Has(l.Digest, l.Size) {
			prog.Emit(api.Event{Step: "cached", Item: item, Current: l.Size, Total: l.Size, Done: true})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			c := progress.NewCounter(prog, "download", item, l.Size)
			if err := p.fetchBlob(ctx, r, l, c); err != nil {
				once.Do(func() { first = err; cancel() })
				return
			}
			c.Done()
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// fetchBlob downloads one blob into the cache, counting bytes on c.
func (p *Puller) fetchBlob(ctx context.Context, r *Remote, d v1.Descriptor, c *progress.Counter) error {
	l, err := r.puller.Layer(ctx, r.Resolved.Context().Digest(d.Digest.String()))
	if err != nil {
		return registryError(r.Resolved, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return registryError(r.Resolved, err)
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
		return registryError(r.Resolved, err)
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

// insecureTransport lets TLS certificates go unverified (self-signed dev
// registries); ggcr itself falls back to plain HTTP for insecure names.
func insecureTransport(rt http.RoundTripper) http.RoundTripper {
	t, ok := rt.(*http.Transport)
	if !ok {
		return rt
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = true
	return t
}
