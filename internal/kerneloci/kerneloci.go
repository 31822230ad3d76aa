// Package kerneloci keeps kernels in OCI registries, so a team can host
// its kernels in the registry it already has.
//
// A kernel is one OCI artifact: an image manifest whose artifactType and
// config media type are banger's, whose config blob is the kernel's
// metadata (JSON), and whose layers are the files, each with its own media
// type: the kernel image, an optional initrd, an optional modules archive
// (a tar, optionally gzip, of the modules tree as kernel catalogs carry
// it) and an optional kernel config fragment (kept for people; pulls skip
// it).
//
// Publish pushes one. Resolve reads one into a catalog entry whose files
// are the registry's blobs (URL, size and sha256 from the manifest), so
// kernel.Pull downloads, verifies, bounds and installs it exactly as it
// does a catalog kernel, resuming an interrupted download with Range
// requests. Tags lists a repository's tags. Everything from a registry is
// hostile input: the manifest and config are size-bounded, media types
// must be banger's, and kernel.Pull validates the entry (name, sizes).
package kerneloci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/imagepull"
	"banger/internal/version"
)

// Media types of a kernel artifact.
const (
	ArtifactType = "application/vnd.banger.kernel.v1"
	ConfigType   = "application/vnd.banger.kernel.config.v1+json"
	VmlinuxType  = "application/vnd.banger.kernel.vmlinux.v1"
	InitrdType   = "application/vnd.banger.kernel.initrd.v1"
	ModulesType  = "application/vnd.banger.kernel.modules.v1.tar"
	FragmentType = "application/vnd.banger.kernel.config-fragment.v1"
)

// Bounds on what a registry may make us read whole.
const (
	maxManifest = 64 << 10
	maxConfig   = 64 << 10
)

// Metadata is the artifact's config blob.
type Metadata struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Arch        string `json:"arch"`
	Description string `json:"description,omitempty"`
}

// Options say how to reach registries.
type Options struct {
	// Keychain finds credentials; nil means the user's docker config
	// (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport carries registry requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Insecure allows plain HTTP and unverified TLS, only for registries on
	// loopback or a private network.
	Insecure bool
}

func (o Options) keychain() authn.Keychain {
	if o.Keychain == nil {
		return authn.DefaultKeychain
	}
	return o.Keychain
}

func (o Options) transport() http.RoundTripper {
	tr := o.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	if o.Insecure {
		tr = imagepull.InsecureTransport(tr)
	}
	return tr
}

func (o Options) remote(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain()), remote.WithTransport(o.transport()),
		remote.WithUserAgent("banger/" + version.Version),
	}
}

// IsRef reports whether s names an OCI reference rather than a kernel
// catalog name: a catalog name has neither '/' nor ':'.
func IsRef(s string) bool { return strings.ContainsAny(s, "/:@") }

// Resolve reads the kernel artifact at ref and returns it as a catalog
// entry whose files are the registry's blobs, with an HTTP client that
// carries the registry's credentials for them. The entry's Name is the
// artifact's unless name is given.
func Resolve(ctx context.Context, ref, name string, opts Options) (api.CatalogEntry, *http.Client, string, error) {
	r, err := imagepull.ParseRef(ref, opts.Insecure)
	if err != nil {
		return api.CatalogEntry{}, nil, "", err
	}
	desc, err := remote.Get(r, opts.remote(ctx)...)
	if err != nil {
		return api.CatalogEntry{}, nil, "", imagepull.RegistryError(r, err)
	}
	if len(desc.Manifest) > maxManifest {
		return api.CatalogEntry{}, nil, "", errdefs.Invalid("%s: manifest of %d bytes is over the %d a kernel artifact has", ref, len(desc.Manifest), maxManifest)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		return api.CatalogEntry{}, nil, "", notAKernel(ref, "its manifest is %s", desc.MediaType)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return api.CatalogEntry{}, nil, "", errdefs.Invalid("%s: reading its manifest: %v", ref, err)
	}
	if m.Config.MediaType != ConfigType || (m.ArtifactType != "" && m.ArtifactType != ArtifactType) {
		return api.CatalogEntry{}, nil, "", notAKernel(ref, "its config is %s", m.Config.MediaType)
	}
	client, err := blobClient(ctx, r.Context(), opts)
	if err != nil {
		return api.CatalogEntry{}, nil, "", err
	}
	meta, err := readConfig(ctx, client, r.Context(), m.Config)
	if err != nil {
		return api.CatalogEntry{}, nil, "", fmt.Errorf("%s: %w", ref, err)
	}
	e := api.CatalogEntry{Name: meta.Name, Version: meta.Version, Arch: meta.Arch, Description: meta.Description}
	if name != "" {
		e.Name = name
	}
	seen := map[types.MediaType]bool{}
	for _, l := range m.Layers {
		if seen[l.MediaType] {
			return api.CatalogEntry{}, nil, "", errdefs.Invalid("%s: more than one layer of type %s", ref, l.MediaType)
		}
		seen[l.MediaType] = true
		f := &api.CatalogFile{URL: blobURL(r.Context(), l.Digest), SHA256: l.Digest.Hex, Size: l.Size}
		if l.Digest.Algorithm != "sha256" {
			return api.CatalogEntry{}, nil, "", errdefs.Invalid("%s: layer digest %s is not sha256", ref, l.Digest)
		}
		switch string(l.MediaType) {
		case VmlinuxType:
			e.Kernel = *f
		case InitrdType:
			e.Initrd = f
		case ModulesType:
			e.Modules = f
		case FragmentType:
		default:
			return api.CatalogEntry{}, nil, "", notAKernel(ref, "it has a layer of type %s", l.MediaType)
		}
	}
	if !seen[VmlinuxType] {
		return api.CatalogEntry{}, nil, "", notAKernel(ref, "it has no kernel layer (%s)", VmlinuxType)
	}
	return e, client, r.Context().Digest(desc.Digest.String()).String(), nil
}

func notAKernel(ref, why string, args ...any) error {
	return errdefs.Invalid("%s is not a banger kernel artifact: %s; publish kernels with 'banger kernel publish'", ref, fmt.Sprintf(why, args...))
}

// blobClient is an HTTP client authorised to pull repo's blobs.
func blobClient(ctx context.Context, repo name.Repository, opts Options) (*http.Client, error) {
	auth, err := opts.keychain().Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", repo.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, opts.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, imagepull.RegistryError(repo.Tag("latest"), err)
	}
	return &http.Client{Transport: tr}, nil
}

func blobURL(repo name.Repository, d v1.Hash) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
}

// readConfig fetches and checks the artifact's metadata.
func readConfig(ctx context.Context, client *http.Client, repo name.Repository, d v1.Descriptor) (Metadata, error) {
	if d.Size <= 0 || d.Size > maxConfig {
		return Metadata{}, errdefs.Invalid("kernel metadata of %d bytes (at most %d)", d.Size, maxConfig)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, blobURL(repo, d.Digest), nil)
	if err != nil {
		return Metadata{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Metadata{}, fmt.Errorf("fetching kernel metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Metadata{}, fmt.Errorf("fetching kernel metadata: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, d.Size+1))
	if err != nil {
		return Metadata{}, fmt.Errorf("fetching kernel metadata: %w", err)
	}
	if int64(len(body)) != d.Size {
		return Metadata{}, errdefs.Invalid("kernel metadata is %d bytes, its descriptor says %d", len(body), d.Size)
	}
	if h, _, err := v1.SHA256(strings.NewReader(string(body))); err != nil || h != d.Digest {
		return Metadata{}, errdefs.Invalid("kernel metadata does not match its digest %s", d.Digest)
	}
	var m Metadata
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&m); err != nil {
		return Metadata{}, errdefs.Invalid("reading kernel metadata: %v", err)
	}
	return m, nil
}

// Tags lists the tags of repository repo (a tag or digest in it is
// ignored), sorted, at most 10000.
func Tags(ctx context.Context, repo string, opts Options) ([]string, error) {
	r, err := imagepull.ParseRef(repo, opts.Insecure)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(r.Context(), opts.remote(ctx)...)
	if err != nil {
		return nil, imagepull.RegistryError(r, err)
	}
	const maxTags = 10000
	if len(tags) > maxTags {
		tags = tags[:maxTags]
	}
	slices.Sort(tags)
	return tags, nil
}

// hostArch is the catalog arch of this host.
func hostArch() string {
	if runtime.GOARCH == "amd64" {
		return "x86_64"
	}
	if runtime.GOARCH == "arm64" {
		return "aarch64"
	}
	return runtime.GOARCH
}

var errNoKernel = errors.New("no kernel file")
