package imagepull

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"banger/internal/disk"
)

// staleTemp is the age after which Prune takes a temporary file for the
// leftover of an interrupted download or index write. A younger one may
// belong to a pull in progress in another process.
const staleTemp = time.Hour

// PruneResult is what a Prune removed. Bytes are allocated bytes
// (st_blocks), the disk space given back.
type PruneResult struct {
	Blobs     int // blobs no kept image uses
	BlobBytes int64
	Temps     int // temporary files older than an hour
	TempBytes int64
}

// Prune keeps the images whose manifest digests ("sha256:...") are in
// keep and removes everything else: index.json entries of other
// images, every blob that is not a kept manifest, its config or one of
// its layers, and temporary files older than an hour. A kept digest whose
// manifest is not in the cache keeps nothing.
//
// A fetch writes an image's blobs before it records the image, so Prune
// must not run while one is in progress on the same directory: the
// daemon orders the two. Failures to remove single files do not stop
// the prune; they are returned joined, and the result counts what was
// removed.
func (c *Cache) Prune(keep map[string]bool) (PruneResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reachable, err := c.reachable(keep)
	if err != nil {
		return PruneResult{}, err
	}
	// index.json first, so it never names a blob that is gone.
	idx, err := c.readIndex()
	if err != nil {
		return PruneResult{}, err
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if keep[m.Digest.String()] {
			kept = append(kept, m)
		}
	}
	if len(kept) < len(idx.Manifests) {
		idx.Manifests = kept
		if err := c.writeIndex(idx); err != nil {
			return PruneResult{}, err
		}
	}

	var res PruneResult
	var errs []error
	blobs := filepath.Join(c.dir, "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil {
		return PruneResult{}, fmt.Errorf("listing cached blobs: %w", err)
	}
	// Temporary files (partial blobs here, index and layout writes at the
	// top) go once they are stale; blobs no kept image uses go now.
	tmps, _ := filepath.Glob(filepath.Join(c.dir, ".tmp*"))
	for _, e := range ents {
		path := filepath.Join(blobs, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".tmp"):
			tmps = append(tmps, path)
		case !reachable[e.Name()]:
			n, err := removeFile(path, 0)
			if err != nil {
				errs = append(errs, err)
			} else if n >= 0 {
				res.Blobs++
				res.BlobBytes += n
			}
		}
	}
	for _, p := range tmps {
		n, err := removeFile(p, staleTemp)
		if err != nil {
			errs = append(errs, err)
		} else if n >= 0 {
			res.Temps++
			res.TempBytes += n
		}
	}
	return res, errors.Join(errs...)
}

// reachable is the set of blob hex digests the kept images use: their
// manifests, configs and layers.
func (c *Cache) reachable(keep map[string]bool) (map[string]bool, error) {
	out := map[string]bool{}
	for d := range keep {
		h, err := v1.NewHash(d)
		if err != nil {
			return nil, fmt.Errorf("pruning the image cache: kept digest %q: %w", d, err)
		}
		raw, err := c.ReadBlob(h)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading cached manifest %s: %w", h, err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			// Removing blobs without knowing which this image uses would
			// be a guess: stop, and say how to get past it.
			return nil, fmt.Errorf("reading cached manifest %s: %w; remove %s (the image's next pull fetches it again) and prune again", h, err, c.BlobPath(h))
		}
		out[h.Hex] = true
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if b.Digest.Algorithm == "sha256" {
				out[b.Digest.Hex] = true
			}
		}
	}
	return out, nil
}

// removeFile removes the regular file at path unless it changed in the
// last minAge, and returns its allocated size, or -1 when it was left.
func removeFile(path string, minAge time.Duration) (int64, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("pruning the image cache: %w", err)
	}
	if !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < minAge {
		return -1, nil
	}
	switch err := os.Remove(path); {
	case errors.Is(err, fs.ErrNotExist):
		return -1, nil
	case err != nil:
		return -1, fmt.Errorf("pruning the image cache: %w", err)
	}
	return disk.Allocated(fi), nil
}
