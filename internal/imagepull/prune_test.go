package imagepull

import (
	"banger/internal/testutil/testregistry"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fetchInto resolves and fetches ref into the cache at dir with a new
// Puller (only the disk is shared), and returns the image and how many
// blobs the registry served for it.
func fetchInto(t *testing.T, reg *testregistry.Registry, dir, ref string) (*Image, int64) {
	t.Helper()
	p, err := New(Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	before := reg.BlobGETs()
	r, err := p.Resolve(context.Background(), ref, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Fetch(context.Background(), r, nil)
	if err != nil {
		t.Fatalf("fetching %s: %v", ref, err)
	}
	return img, reg.BlobGETs() - before
}

// blobsOf is the hex digests of an image's manifest, config and layers.
func blobsOf(img *Image) []string {
	out := []string{strings.TrimPrefix(img.Info.Digest, "sha256:"), strings.TrimPrefix(img.Info.ConfigDigest, "sha256:")}
	for _, l := range img.Layers {
		out = append(out, strings.TrimPrefix(l.Digest, "sha256:"))
	}
	return out
}

// cachedBlobs lists blobs/sha256, temporary files included.
func cachedBlobs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func indexRefs(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Annotations[refNameAnnotation])
	}
	return out
}

// oldFile writes a file whose modification time is age ago.
func oldFile(t *testing.T, path string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
}

// Two images share a base layer; keeping one removes only what the other
// alone used, and the kept one is then fetched again without a download.
func TestCachePrune(t *testing.T) {
	reg := newRegistry(t, nil)
	base := layerOf(t, dir("etc"), file("etc/os-release", "ID=test"))
	ref1 := reg.Push(t, "prune/one:v1", imageOf(t, base, layerOf(t, file("one", "1"))))
	ref2 := reg.Push(t, "prune/two:v1", imageOf(t, base, layerOf(t, file("two", "2"))))
	dir := filepath.Join(t.TempDir(), "oci")
	one, _ := fetchInto(t, reg, dir, ref1)
	fetchInto(t, reg, dir, ref2)
	blobs := filepath.Join(dir, "blobs", "sha256")
	oldFile(t, filepath.Join(blobs, ".tmp-0123456789ab-1"), 2*time.Hour)
	oldFile(t, filepath.Join(dir, ".tmp-index.json-2"), 2*time.Hour)
	oldFile(t, filepath.Join(blobs, ".tmp-0123456789ab-3"), time.Minute) // a download in progress

	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Prune(map[string]bool{one.Info.Digest: true})
	if err != nil {
		t.Fatal(err)
	}
	want := append(blobsOf(one), ".tmp-0123456789ab-3")
	sort.Strings(want)
	if diff := cmp.Diff(want, cachedBlobs(t, dir)); diff != "" {
		t.Errorf("blobs after the prune (-want +got):\n%s", diff)
	}
	if res.Blobs != 3 || res.BlobBytes <= 0 || res.Temps != 2 || res.TempBytes <= 0 {
		t.Errorf("result = %+v; want two's manifest, config and own layer, and the two old temporary files", res)
	}
	if got := indexRefs(t, dir); !cmp.Equal(got, []string{ref1}) {
		t.Errorf("index.json names %v, want only %s", got, ref1)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-index.json-2")); !os.IsNotExist(err) {
		t.Errorf("old index temporary file: %v", err)
	}

	if _, n := fetchInto(t, reg, dir, ref1); n != 0 {
		t.Errorf("fetching the kept image again downloaded %d blobs, want 0", n)
	}
	if _, n := fetchInto(t, reg, dir, ref2); n != 2 { // its config and its own layer; the base stayed
		t.Errorf("fetching the pruned image again downloaded %d blobs, want 2", n)
	}

	// Keeping nothing empties the cache (but the download in progress).
	if res, err := c.Prune(nil); err != nil || res.Blobs != 7 {
		t.Errorf("prune keeping nothing = %+v, %v; want all 7 blobs removed", res, err)
	}
	if got := cachedBlobs(t, dir); !cmp.Equal(got, []string{".tmp-0123456789ab-3"}) {
		t.Errorf("blobs after pruning everything: %v", got)
	}
	if got := indexRefs(t, dir); len(got) != 0 {
		t.Errorf("index.json after pruning everything names %v", got)
	}
}

// A tag that moved: index.json names only the newer image, but an older
// one that is kept (a registered image still holds it) keeps its blobs.
func TestCachePruneKeepsImagesTheIndexNoLongerNames(t *testing.T) {
	reg := newRegistry(t, nil)
	dir := filepath.Join(t.TempDir(), "oci")
	ref := reg.Push(t, "moving/tag:v1", imageOf(t, layerOf(t, file("a", "old"))))
	old, _ := fetchInto(t, reg, dir, ref)
	reg.Push(t, "moving/tag:v1", imageOf(t, layerOf(t, file("a", "new"))))
	cur, _ := fetchInto(t, reg, dir, ref)

	c, _ := OpenCache(dir)
	res, err := c.Prune(map[string]bool{old.Info.Digest: true, cur.Info.Digest: true})
	if err != nil || res.Blobs != 0 {
		t.Fatalf("prune keeping both = %+v, %v; want nothing removed", res, err)
	}
	res, err = c.Prune(map[string]bool{old.Info.Digest: true})
	if err != nil || res.Blobs != 3 {
		t.Errorf("prune keeping the old image = %+v, %v; want the new image's 3 blobs removed", res, err)
	}
	want := blobsOf(old)
	sort.Strings(want)
	if got := cachedBlobs(t, dir); !cmp.Equal(got, want) {
		t.Errorf("blobs = %v, want the old image's %v", got, want)
	}
	if got := indexRefs(t, dir); len(got) != 0 {
		t.Errorf("index.json names %v; its only entry was the new image", got)
	}
}

// A kept manifest that cannot be read stops the prune before anything is
// removed; bad digests are refused.
func TestCachePruneRefusesToGuess(t *testing.T) {
	reg := newRegistry(t, nil)
	dir := filepath.Join(t.TempDir(), "oci")
	img, _ := fetchInto(t, reg, dir, reg.Push(t, "bad/img:v1", imageOf(t, layerOf(t, file("a", "a")))))
	c, _ := OpenCache(dir)
	h, _ := v1.NewHash(img.Info.Digest)
	if err := os.WriteFile(c.BlobPath(h), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := cachedBlobs(t, dir)
	_, err := c.Prune(map[string]bool{img.Info.Digest: true})
	if err == nil || !strings.Contains(err.Error(), "remove "+c.BlobPath(h)) {
		t.Errorf("prune with a corrupt kept manifest: %v; want an error saying what to remove", err)
	}
	if got := cachedBlobs(t, dir); !cmp.Equal(got, before) {
		t.Errorf("a failed prune removed blobs: %v -> %v", before, got)
	}
	if _, err := c.Prune(map[string]bool{"md5:abc": true}); err == nil {
		t.Error("a malformed kept digest is not an error")
	}
}

// TestCacheIsPrivate: nothing a pull leaves in the cache (directories,
// blobs, index) is open to other users: layers may have been pulled with
// the user's credentials.
func TestCacheIsPrivate(t *testing.T) {
	reg := newRegistry(t, nil)
	ref := reg.Push(t, "private/img:v1", imageOf(t, layerOf(t, dir("etc"), file("etc/os-release", "ID=test"))))
	cache := filepath.Join(t.TempDir(), "oci")
	fetchInto(t, reg, cache, ref)
	n := 0
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: open to other users", p, fi.Mode().Perm())
		}
		n++
		return nil
	})
	if n < 6 { // the dirs, oci-layout, index.json, manifest, config, layer
		t.Errorf("only %d entries in the cache", n)
	}
}
