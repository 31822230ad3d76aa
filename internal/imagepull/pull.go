package imagepull

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api/errdefs"
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
	r, err := ParseRef(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	plat, err := parsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	tr := p.opts.Transport
	if o.Insecure {
		tr = InsecureTransport(tr)
	}
	pl, err := remote.NewPuller(remote.WithAuthFromKeychain(p.opts.Keychain), remote.WithTransport(tr),
		remote.WithPlatform(plat), remote.WithUserAgent("banger/"+version.Version))
	if err != nil {
		return nil, err
	}
	desc, err := pl.Get(ctx, r)
	if err != nil {
		return nil, RegistryError(r, err)
	}
	out := &Remote{Ref: ref, Platform: plat, puller: pl}
	if desc.MediaType.IsIndex() {
		out.IndexDigest = desc.Digest.String()
		child, err := pickPlatform(r, desc.Manifest, plat)
		if err != nil {
			return nil, err
		}
		if desc, err = pl.Get(ctx, r.Context().Digest(child.String())); err != nil {
			return nil, RegistryError(r, err)
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

// PlatformName is the resolved platform as os/arch[/variant].
func (r *Remote) PlatformName() string { return platformString(r.Platform) }

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

// InsecureTransport lets TLS certificates go unverified (self-signed dev
// registries); ggcr itself falls back to plain HTTP for insecure names.
func InsecureTransport(rt http.RoundTripper) http.RoundTripper {
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
