// Package testregistry serves go-containerregistry's in-process OCI
// registry on loopback for tests, counting the blob downloads it serves
// (how tests see that a cache was or was not used).
package testregistry

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a registry the test started; it stops with the test.
type Registry struct {
	// Host is host:port, the prefix of the registry's references.
	Host     string
	blobGETs atomic.Int64
}

var blobPath = regexp.MustCompile(`/v2/.+/blobs/sha256:[0-9a-f]{64}$`)

// New starts a registry; wrap, when not nil, wraps its handler (to add
// authentication or faults).
func New(t testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	r := &Registry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && blobPath.MatchString(req.URL.Path) {
			r.blobGETs.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// BlobGETs counts the blob downloads served so far.
func (r *Registry) BlobGETs() int64 { return r.blobGETs.Load() }

// Push writes img as Host/repoTag and returns that reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	ref := r.Host + "/" + repoTag
	nref, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}
