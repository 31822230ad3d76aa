package imagepull

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Cache is an OCI image layout (oci-layout, index.json, blobs/sha256/)
// holding the manifests, configs and layers of pulled images. Pulls
// share it: a blob is downloaded once, whichever image needs it.
//
// Blobs are written to a temporary file, checked against their digest
// and size, then renamed into place, so a blob that exists is complete
// and correct; concurrent writers of one blob are harmless.
type Cache struct {
	dir string
	mu  sync.Mutex // serialises index.json updates within this process
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

// OpenCache creates the layout in dir if needed.
func OpenCache(dir string) (*Cache, error) {
	// Private: layers pulled with the user's credentials are theirs alone.
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("creating image cache: %w", err)
	}
	c := &Cache{dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, os.ErrNotExist) {
		if err := writeFileAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
			return nil, fmt.Errorf("creating image cache: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if err := c.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Dir is the layout's directory.
func (c *Cache) Dir() string { return c.dir }

// BlobPath is where the blob with digest h lives (or would).
func (c *Cache) BlobPath(h v1.Hash) string {
	return filepath.Join(c.dir, "blobs", h.Algorithm, h.Hex)
}

// Has reports whether the blob is cached with the expected size
// (size < 0 accepts any).
func (c *Cache) Has(h v1.Hash, size int64) bool {
	fi, err := os.Stat(c.BlobPath(h))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// Put stores the blob of size bytes read from r, verifying its sha256
// digest and its size. It reads at most size+1 bytes, so a registry that
// streams without end costs one byte more than the manifest promised,
// never the disk. Nothing is left behind on error.
func (c *Cache) Put(ctx context.Context, h v1.Hash, size int64, r io.Reader) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm %q", h, h.Algorithm)
	}
	if size < 0 {
		return fmt.Errorf("blob %s: size %d is negative", h, size)
	}
	final := c.BlobPath(h)
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+h.Hex[:12]+"-")
	if err != nil {
		return fmt.Errorf("caching blob %s: %w", h, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(ctxReader{ctx, r}, min(size, math.MaxInt64-1)+1))
	switch {
	case err == nil && n > size:
		err = fmt.Errorf("the registry sent more than the %d bytes the manifest says", size)
	case err == nil && n != size:
		err = fmt.Errorf("got %d bytes, the manifest says %d", n, size)
	}
	if err == nil && hex.EncodeToString(sum.Sum(nil)) != h.Hex {
		err = fmt.Errorf("content does not match its digest")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		return fmt.Errorf("caching blob %s: %w", h, err)
	}
	return nil
}

// PutBytes stores a small blob (manifest, config).
func (c *Cache) PutBytes(ctx context.Context, h v1.Hash, data []byte) error {
	if c.Has(h, int64(len(data))) {
		return nil
	}
	return c.Put(ctx, h, int64(len(data)), bytes.NewReader(data))
}

// ReadBlob returns a small cached blob.
func (c *Cache) ReadBlob(h v1.Hash) ([]byte, error) {
	return os.ReadFile(c.BlobPath(h))
}

// Record adds the image manifest desc to index.json under ref, replacing
// an earlier entry for ref, so the cache reads as a normal OCI layout.
func (c *Cache) Record(desc v1.Descriptor, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx, err := c.readIndex()
	if err != nil {
		return err
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Annotations[refNameAnnotation] != ref {
			kept = append(kept, m)
		}
	}
	desc.Annotations = map[string]string{refNameAnnotation: ref}
	idx.Manifests = append(kept, desc)
	return c.writeIndex(idx)
}

func (c *Cache) readIndex() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(c.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading image cache index: %w", err)
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(f)
	if err != nil {
		return nil, fmt.Errorf("reading image cache index %s: %w; remove it to start a fresh cache", f.Name(), err)
	}
	return idx, nil
}

func (c *Cache) writeIndex(idx *v1.IndexManifest) error {
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.dir, "index.json"), append(data, '\n')); err != nil {
		return fmt.Errorf("writing image cache index: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path) // CreateTemp made it 0600, like the blobs
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
