package imagepull

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api"
	"banger/api/errdefs"
)

// A second pull of an image, or of another image sharing its layers,
// fetches no blob: the cache is an OCI layout shared between pulls.
func TestCacheReuse(t *testing.T) {
	requireE2fs(t)
	reg := newRegistry(t, nil)
	base := layerOf(t, dir("etc"), file("etc/os-release", "ID=test"))
	ref1 := reg.Push(t, "cache/one:v1", imageOf(t, base, layerOf(t, file("one", "1"))))
	ref2 := reg.Push(t, "cache/two:v1", imageOf(t, base, layerOf(t, file("two", "2"))))
	cacheDir := filepath.Join(t.TempDir(), "oci")

	pull := func(ref string) int64 {
		t.Helper()
		p, err := New(Options{CacheDir: cacheDir}) // a new Puller: only the disk is shared
		if err != nil {
			t.Fatal(err)
		}
		before := reg.BlobGETs()
		_, res, err := pullInto(t, p, ref, BuildOptions{})
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		fsckClean(t, res.Path)
		return reg.BlobGETs() - before
	}
	if got := pull(ref1); got != 3 { // config + 2 layers
		t.Errorf("first pull fetched %d blobs, want 3", got)
	}
	if got := pull(ref1); got != 0 {
		t.Errorf("second pull of the same image fetched %d blobs, want 0", got)
	}
	if got := pull(ref2); got != 2 { // its config and its own layer; the base is shared
		t.Errorf("pull of an image sharing the base layer fetched %d blobs, want 2", got)
	}
	// The cache reads as an OCI layout naming both images.
	idx, err := os.ReadFile(filepath.Join(cacheDir, "index.json"))
	if err != nil || !strings.Contains(string(idx), ref1) || !strings.Contains(string(idx), ref2) {
		t.Errorf("index.json = %s (%v)", idx, err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "oci-layout")); err != nil {
		t.Error(err)
	}
}

// stallOnce serves the first GET of blob digest halfway, then holds the
// connection until the client goes away; ready is closed at the stall.
func stallOnce(digest string, ready chan struct{}) func(http.Handler) http.Handler {
	var done atomic.Bool
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, digest) || done.Swap(true) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			close(ready)
			<-r.Context().Done()
		})
	}
}

// Ctrl-C in the middle of a download leaves only complete blobs; the
// retry fetches what is missing and builds.
func TestInterruptedPullRetry(t *testing.T) {
	requireE2fs(t)
	big := layerOf(t, file("big", strings.Repeat("x", 4<<20)))
	bigDigest, _ := big.Digest()
	ready := make(chan struct{})
	reg := newRegistry(t, stallOnce(bigDigest.String(), ready))
	ref := reg.Push(t, "interrupt/img:v1", imageOf(t, layerOf(t, file("small", "s")), big))
	p := newPuller(t)

	ctx, cancel := context.WithCancel(context.Background())
	r, err := p.Resolve(ctx, ref, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-ready; cancel() }()
	if _, err := p.Fetch(ctx, r, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted fetch: %v, want context.Canceled", err)
	}
	if p.Cache().Has(bigDigest, -1) {
		t.Error("the interrupted blob is in the cache")
	}
	noTempFiles(t, p.Cache())

	before := reg.BlobGETs()
	img, res, err := pullInto(t, p, ref, BuildOptions{})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	// The cancel can land before the other layer or the config finished,
	// so those may be fetched again; completed blobs never are.
	if got := reg.BlobGETs() - before; got < 1 || got > 3 {
		t.Errorf("retry fetched %d blobs, want the interrupted one (and at most the other layer and the config)", got)
	}
	fsckClean(t, res.Path)
	if len(img.Layers) != 2 || img.Info.Digest != r.Digest.String() {
		t.Errorf("image = %+v", img.Info)
	}
}

// Canceling during the build removes everything the build made.
func TestInterruptedBuild(t *testing.T) {
	requireE2fs(t)
	data := tarOf(t, file("a", strings.Repeat("a", 8<<20)), file("b", strings.Repeat("b", 8<<20)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	lpath := filepath.Join(t.TempDir(), "l.tar")
	os.WriteFile(lpath, data, 0o644)
	_, err := Build(ctx, []Layer{{Digest: "sha256:aa", Path: lpath}}, BuildOptions{Dir: dir, Progress: func(ev api.Event) {
		if ev.Step == "write" && ev.Item != "" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("canceled build left %v", names(left))
	}
}

// A private registry: anonymous pulls are refused with a hint, and
// credentials come from the docker config in $DOCKER_CONFIG.
func TestPrivateRegistryBasicAuth(t *testing.T) {
	requireE2fs(t)
	const user, pass = "ann", "s3cret"
	reg := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="banger-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := reg.Push(t, "private/img:v1", imageOf(t, layerOf(t, file("secret", "s"))), remote.WithAuth(&authn.Basic{Username: user, Password: pass}))

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	_, err := newPuller(t).Resolve(context.Background(), ref, ResolveOptions{})
	if err == nil || !strings.Contains(err.Error(), "refused access") || !strings.Contains(err.Error(), "docker login "+reg.Host) || !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("anonymous pull: %v", err)
	}

	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", cfg)
	_, res, err := pullInto(t, newPuller(t), ref, BuildOptions{})
	if err != nil {
		t.Fatalf("pull with docker config credentials: %v", err)
	}
	if got := cat(t, res.Path, "/secret"); got != "s" {
		t.Errorf("/secret = %q", got)
	}
}

// A multi-platform index resolves to the host's image; an index without
// one says what it offers.
func TestPlatformIndex(t *testing.T) {
	reg := newRegistry(t, nil)
	host := hostPlatform()
	other := v1.Platform{OS: "linux", Architecture: "riscv64"}
	mine := imageOf(t, layerOf(t, file("arch", host.Architecture)))
	theirs := imageOf(t, layerOf(t, file("arch", "riscv64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &other}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &host}},
	)
	ref := reg.Host + "/multi/arch:v1"
	if err := remote.WriteIndex(mustRef(t, ref), idx); err != nil {
		t.Fatal(err)
	}
	p := newPuller(t)
	r, err := p.Resolve(context.Background(), ref, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mine.Digest()
	idxDigest, _ := idx.Digest()
	if r.Digest != want || r.IndexDigest != idxDigest.String() {
		t.Errorf("resolved %s (index %s), want %s (index %s)", r.Digest, r.IndexDigest, want, idxDigest)
	}

	only := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &other}})
	ref2 := reg.Host + "/multi/foreign:v1"
	if err := remote.WriteIndex(mustRef(t, ref2), only); err != nil {
		t.Fatal(err)
	}
	_, err = p.Resolve(context.Background(), ref2, ResolveOptions{})
	if err == nil || !strings.Contains(err.Error(), "has no linux/"+host.Architecture+" image (it offers [linux/riscv64])") {
		t.Errorf("foreign-only index: %v", err)
	}
	if _, err := p.Resolve(context.Background(), ref, ResolveOptions{Platform: "linux/riscv64"}); err == nil || !strings.Contains(err.Error(), "natively") {
		t.Errorf("--platform of another arch: %v", err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// zstd and uncompressed layers are recognised by content.
func TestLayerCompressions(t *testing.T) {
	requireE2fs(t)
	reg := newRegistry(t, nil)
	data := tarOf(t, file("z", "zstd layer"))
	opener := func() (io.ReadCloser, error) { return nopCloser(data), nil }
	zl, err := tarball.LayerFromOpener(opener, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := tarOf(t, file("p", "plain layer"))
	pl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return nopCloser(plain), nil }, tarball.WithCompression(compression.None), tarball.WithMediaType(types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Push(t, "comp/img:v1", imageOf(t, zl, pl))
	_, res, err := pullInto(t, newPuller(t), ref, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cat(t, res.Path, "/z") != "zstd layer" || cat(t, res.Path, "/p") != "plain layer" {
		t.Error("layer content lost")
	}
}

// Registry and reference errors say what to do.
func TestResolveErrors(t *testing.T) {
	reg := newRegistry(t, nil)
	p := newPuller(t)
	ctx := context.Background()
	for _, tt := range []struct {
		ref      string
		o        ResolveOptions
		kind     error
		contains string
	}{
		{reg.Host + "/no/such:tag", ResolveOptions{}, errdefs.ErrNotFound, "not found in registry"},
		{"", ResolveOptions{}, errdefs.ErrInvalid, "an image reference is required"},
		{"UPPER/case", ResolveOptions{}, errdefs.ErrInvalid, "is not an image reference"},
		{"debian:bookworm", ResolveOptions{Insecure: true}, errdefs.ErrInvalid, "--insecure is only allowed"},
		{reg.Host + "/x:y", ResolveOptions{Platform: "windows/amd64"}, errdefs.ErrInvalid, "Linux guests only"},
		{"127.0.0.1:1/nothing:here", ResolveOptions{}, errdefs.ErrUnavailable, "cannot reach registry 127.0.0.1:1"},
	} {
		_, err := p.Resolve(ctx, tt.ref, tt.o)
		if !errors.Is(err, tt.kind) || !strings.Contains(fmt.Sprint(err), tt.contains) {
			t.Errorf("Resolve(%q, %+v) = %v, want %v containing %q", tt.ref, tt.o, err, tt.kind, tt.contains)
		}
	}
}

func TestDevRegistry(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "[::1]:5000": true, "10.1.2.3": true,
		"192.168.1.9:443": true, "registry:5000": true, "reg.local": true, "box.internal:80": true,
		"ghcr.io": false, "index.docker.io": false, "8.8.8.8": false, "registry.example.com": false,
	} {
		if got := devRegistry(host); got != want {
			t.Errorf("devRegistry(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestDefaultName(t *testing.T) {
	for ref, want := range map[string]string{
		"debian:bookworm":                 "debian-bookworm",
		"debian":                          "debian",
		"ubuntu:latest":                   "ubuntu",
		"ghcr.io/org/devbox:tag":          "devbox-tag",
		"localhost:5000/team/Img_X:1.2":   "img-x-1-2",
		"reg.io/a/b@sha256:" + hex64("c"): "b-cccccccccccc",
		"___":                             "image",
	} {
		if got := DefaultName(ref); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func hex64(c string) string { return strings.Repeat(c, 64) }
