package imagepull

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"banger/api/errdefs"
)

// endlessBlob serves GETs of blob digest as the blob followed by junk
// without end, and no Content-Length (a chunked response), as a broken or
// hostile registry might. It stops after 64 MiB so a failing test ends.
func endlessBlob(digest string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, digest) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			w.WriteHeader(http.StatusOK)
			if _, err := w.Write(rec.Body.Bytes()); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			junk := make([]byte, 32<<10)
			for sent := 0; sent < 64<<20; sent += len(junk) {
				if _, err := w.Write(junk); err != nil {
					return
				}
			}
		})
	}
}

// bodyCounter counts the response body bytes the client reads for
// requests whose path ends in suffix.
type bodyCounter struct {
	base   http.RoundTripper
	suffix string
	n      atomic.Int64
}

func (c *bodyCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, c.suffix) {
		resp.Body = countedBody{resp.Body, &c.n}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// A registry streaming more of a blob than the manifest says is cut off
// one byte past the manifest's size, and nothing stays in the cache.
func TestBlobLongerThanManifest(t *testing.T) {
	layer := layerOf(t, file("a", "hello"))
	digest, _ := layer.Digest()
	size, _ := layer.Size()
	reg := newRegistry(t, endlessBlob(digest.String()))
	ref := reg.Push(t, "endless/img:v1", imageOf(t, layer))
	counter := &bodyCounter{base: http.DefaultTransport.(*http.Transport).Clone(), suffix: digest.String()}
	p, err := New(Options{CacheDir: filepath.Join(t.TempDir(), "oci"), Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := p.Resolve(ctx, ref, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Fetch(ctx, r, nil)
	for _, want := range []string{digest.String(), "registry sent more than the " + strconv.FormatInt(size, 10) + " bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Fetch error = %v, want one containing %q", err, want)
		}
	}
	if got := counter.n.Load(); got > size+1 {
		t.Errorf("read %d bytes of a %d-byte blob, want at most %d", got, size, size+1)
	}
	if p.Cache().Has(digest, -1) {
		t.Error("the overlong blob is in the cache")
	}
	noTempFiles(t, p.Cache())
}

func noTempFiles(t *testing.T, c *Cache) {
	t.Helper()
	blobs, _ := os.ReadDir(filepath.Join(c.Dir(), "blobs", "sha256"))
	for _, b := range blobs {
		if strings.HasPrefix(b.Name(), ".tmp") {
			t.Errorf("temporary file %s left in the cache", b.Name())
		}
	}
}

// rawManifest pushes a hand-made manifest.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// A manifest whose blob sizes cannot be right, or cannot fit in the
// cache, fails before any blob is downloaded.
func TestImpossibleBlobSizes(t *testing.T) {
	reg := newRegistry(t, nil)
	img := imageOf(t, layerOf(t, file("a", "a")))
	reg.Push(t, "sizes/base:v1", img)
	tests := []struct {
		name string
		edit func(m *v1.Manifest)
		want []string
	}{
		{name: "layer of 1 PiB", edit: func(m *v1.Manifest) { m.Layers[0].Size = 1 << 50 }, want: []string{"needs 1.0 PiB of blobs in the image cache", "is free there", "free some space under"}},
		{name: "negative layer size", edit: func(m *v1.Manifest) { m.Layers[0].Size = -1 }, want: []string{"negative size (-1)"}},
		{name: "config of 1 TiB", edit: func(m *v1.Manifest) { m.Config.Size = 1 << 40 }, want: []string{"its config is 1.0 TiB"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			m = m.DeepCopy()
			tt.edit(m)
			raw, _ := json.Marshal(m)
			ref := reg.Host + "/sizes/edited:v" + strconv.Itoa(i)
			if err := remote.Put(mustRef(t, ref), rawManifest{raw, m.MediaType}); err != nil {
				t.Fatal(err)
			}
			p := newPuller(t)
			ctx := context.Background()
			r, err := p.Resolve(ctx, ref, ResolveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			before := reg.BlobGETs()
			_, err = p.Fetch(ctx, r, nil)
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("Fetch error = %v, want an invalid-image error", err)
			}
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Fetch error = %v, want one containing %q", err, want)
				}
			}
			if got := reg.BlobGETs() - before; got != 0 {
				t.Errorf("fetched %d blobs before failing, want 0", got)
			}
		})
	}
}

// zeroLayer writes a gzip tar layer of files of zeros (sizes in whole
// MiB). It is a series of gzip members, each compressed once and
// repeated: deflating hundreds of MiB under the race detector is slow.
func zeroLayer(t *testing.T, files []zeroFile) Layer {
	t.Helper()
	gz := func(data []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		return buf.Bytes()
	}
	mib := gz(make([]byte, 1<<20))
	var out bytes.Buffer
	for _, f := range files {
		var hdr bytes.Buffer
		tw := tar.NewWriter(&hdr) // writes the header block at once
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: f.mib << 20}); err != nil {
			t.Fatal(err)
		}
		out.Write(gz(hdr.Bytes()))
		for range f.mib {
			out.Write(mib)
		}
	}
	out.Write(gz(make([]byte, 2*512))) // the end-of-archive blocks
	path := filepath.Join(t.TempDir(), "zeros.tar.gz")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return Layer{Digest: "sha256:" + hex64("0"), Size: int64(out.Len()), Path: path}
}

type zeroFile struct {
	name string
	mib  int64
}

// --size bounds the unpack step: a layer holding more file data than
// --size fails while unpacking, not after spooling all of it.
func TestSizeBoundsUnpack(t *testing.T) {
	requireE2fs(t)
	layer := zeroLayer(t, []zeroFile{{"small", 40}, {"big", 200}})
	dir := t.TempDir()
	var spooled atomic.Int64 // the most seen in the build directory at once
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			var sum int64
			es, _ := os.ReadDir(dir)
			for _, e := range es {
				if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".spool") {
					sum += fi.Size()
				}
			}
			if sum > spooled.Load() {
				spooled.Store(sum)
			}
		}
	}()
	_, err := Build(context.Background(), []Layer{layer}, BuildOptions{Dir: dir, Size: 64 << 20})
	close(stop)
	<-polled
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "unpack to more than --size 64.0 MiB") {
		t.Errorf("Build error = %v, want an invalid error naming --size 64.0 MiB", err)
	}
	if got := spooled.Load(); got > 64<<20 {
		t.Errorf("spooled %d MiB before failing, want at most --size, 64 MiB", got>>20)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("failed build left %v", names(left))
	}
}

// --insecure lets a registry with a self-signed certificate be pulled
// from; without it the pull fails and says what to do.
func TestInsecureTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(nopLogger())))
	srv.Config.ErrorLog = nopLogger() // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// A name, not 127.0.0.1: go-containerregistry speaks plain HTTP to
	// loopback addresses unless told otherwise. ".test" is a private name.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	host := "registry.test:" + port
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	push := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ref := host + "/tls/img:v1"
	layer := layerOf(t, file("over-tls", "yes"))
	if err := remote.Write(mustRef(t, ref), imageOf(t, layer), remote.WithTransport(push)); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{CacheDir: filepath.Join(t.TempDir(), "oci"), Transport: &http.Transport{DialContext: dial}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err = p.Resolve(ctx, ref, ResolveOptions{})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "certificate this host does not trust") || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("Resolve without --insecure = %v, want an invalid error about the certificate that suggests --insecure", err)
	}

	r, err := p.Resolve(ctx, ref, ResolveOptions{Insecure: true})
	if err != nil {
		t.Fatalf("Resolve with --insecure: %v", err)
	}
	img, err := p.Fetch(ctx, r, nil)
	if err != nil {
		t.Fatalf("Fetch with --insecure: %v", err)
	}
	want, _ := layer.Digest()
	if len(img.Layers) != 1 || img.Layers[0].Digest != want.String() || !p.Cache().Has(want, -1) {
		t.Errorf("layers = %+v, want %s in the cache", img.Layers, want)
	}
}
