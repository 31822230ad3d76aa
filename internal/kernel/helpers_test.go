package kernel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"banger/api"
)

// tarEntry describes one member of a test tarball.
type tarEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func makeTar(t *testing.T, gz bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)[:hdr.Size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return buf.Bytes()
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(buf.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zbuf.Bytes()
}

// modulesTar is a small modules tree: nested dirs, an implied parent and
// a relative symlink.
func modulesTar(t *testing.T) []byte {
	return makeTar(t, true,
		tarEntry{name: "6.1.0/", typ: tar.TypeDir},
		tarEntry{name: "6.1.0/kernel/drivers/net/virtio_net.ko", typ: tar.TypeReg, body: "virtio"},
		tarEntry{name: "6.1.0/modules.dep", typ: tar.TypeReg, body: "kernel/drivers/net/virtio_net.ko:\n"},
		tarEntry{name: "6.1.0/kernel/net", typ: tar.TypeSymlink, linkname: "drivers/net"},
	)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func catalogFile(url string, b []byte) api.CatalogFile {
	return api.CatalogFile{URL: url, SHA256: sha(b), Size: int64(len(b))}
}

// fileServer serves named blobs. A handler set for a name replaces the
// default (http.ServeContent with a strong ETag, which honours Range and
// If-Range). Every request is recorded.
type fileServer struct {
	*httptest.Server
	files map[string][]byte

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	requests []*http.Request
}

func newFileServer(t *testing.T, files map[string][]byte) *fileServer {
	fs := &fileServer{files: files, handlers: map[string]http.HandlerFunc{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Path)
	fs.mu.Lock()
	fs.requests = append(fs.requests, r.Clone(r.Context()))
	h := fs.handlers[name]
	fs.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	b, ok := fs.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", etagOf(b))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (fs *fileServer) handle(name string, h http.HandlerFunc) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.handlers[name] = h
}

// requestsFor returns the recorded requests for name, oldest first.
func (fs *fileServer) requestsFor(name string) []*http.Request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(fs.requests), func(r *http.Request) bool {
		return filepath.Base(r.URL.Path) != name
	})
}

func etagOf(b []byte) string { return `"` + sha(b)[:16] + `"` }

// truncating answers with the full Content-Length, sends the first half
// and drops the connection, like a network failure mid-download.
func truncating(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("ETag", etagOf(b))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}
}

// listTree returns the slash paths under dir, for asserting what is left.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
