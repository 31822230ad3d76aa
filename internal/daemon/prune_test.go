package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/api"
	"banger/internal/imagebuild"
	"banger/internal/testutil/testregistry"
)

// layer is a gzip layer holding one file.
func layer(t *testing.T, name, body string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)})
	io.WriteString(tw, body)
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pushLayers writes an image of layers (oldest first) as reg's repoTag.
func pushLayers(t *testing.T, reg *testregistry.Registry, repoTag string, layers ...v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return reg.Push(t, repoTag, img)
}

// pull pulls ref as image name through the daemon, booting w's kernel
// file, and returns how many blobs it downloaded.
func (w *world) pull(reg *testregistry.Registry, ref, name string) int64 {
	w.t.Helper()
	before := reg.BlobGETs()
	im, err := w.D.PullImage(context.Background(), api.PullImageRequest{Ref: ref, Name: name, Kernel: w.kernel(), Size: 32 << 20}, nil)
	if err != nil {
		w.t.Fatalf("pulling %s: %v", ref, err)
	}
	if im.Digest == "" {
		w.t.Fatalf("pulled image %s has no digest", name)
	}
	return reg.BlobGETs() - before
}

// kernel is the kernel file of the world's default image.
func (w *world) kernel() string {
	w.t.Helper()
	im, err := w.D.Image(context.Background(), "default")
	if err != nil {
		w.t.Fatal(err)
	}
	return im.Kernel
}

// staleDir makes dir, with a file, last changed age ago.
func staleDir(t *testing.T, dir string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "partial"), bytes.Repeat([]byte("p"), 8<<10), 0o600)
	then := time.Now().Add(-age)
	os.Chtimes(dir, then, then)
}

func requirePullTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"tune2fs", "resize2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// Two pulled images share a layer; one is deleted. The prune removes its
// own blobs, the build steps of images that are gone and the leftovers
// of interrupted operations, and keeps everything the other image uses:
// pulling it again downloads nothing.
func TestPruneImages(t *testing.T) {
	w := newWorld(t)
	requirePullTools(t)
	ctx := context.Background()
	reg := testregistry.New(t, nil)
	base := layer(t, "etc/os-release", "ID=test\n")
	refOne := pushLayers(t, reg, "prune/one:v1", base, layer(t, "one", "1"))
	refTwo := pushLayers(t, reg, "prune/two:v1", base, layer(t, "two", "2"))
	w.pull(reg, refOne, "one")
	w.pull(reg, refTwo, "two")

	// Build steps of a live image and of one that is gone.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, imagebuild.RootfsFile), bytes.Repeat([]byte("r"), 64<<10), 0o600)
	os.WriteFile(filepath.Join(src, imagebuild.WorkSeedFile), []byte("w"), 0o600)
	cache := w.D.BuildCache()
	for key, im := range map[string]string{"aaaaaaaaaaaaaaaa1": "one", "bbbbbbbbbbbbbbbb2": "gone"} {
		if err := cache.Store(ctx, src, imagebuild.Entry{Key: key, Image: im, Step: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers: a partial blob, a build cache staging directory and a
	// default root filesystem work directory of killed operations.
	layout := w.Opts.Layout
	partial := filepath.Join(layout.OCICacheDir, "blobs", "sha256", ".tmp-0123456789ab-1")
	os.WriteFile(partial, []byte("partial"), 0o644)
	then := time.Now().Add(-2 * time.Hour)
	os.Chtimes(partial, then, then)
	staleDir(t, filepath.Join(cache.Dir, ".tmp-cccccccccccc-1"), 25*time.Hour)
	staleDir(t, filepath.Join(layout.CacheDir, ".default-rootfs.tmp-1"), time.Hour)

	if err := w.D.DeleteImage(ctx, "two", false); err != nil {
		t.Fatal(err)
	}
	rep, err := w.D.PruneImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OCIBlobs != 3 || rep.BuildSteps != 1 || rep.Leftovers != 3 || len(rep.Warnings) != 0 {
		t.Errorf("report = %+v; want two's manifest, config and own layer, the build step of image gone, and 3 leftovers", rep)
	}
	if rep.OCIBytes <= 0 || rep.BuildBytes < 64<<10 || rep.LeftoverBytes <= 0 {
		t.Errorf("report = %+v; want the bytes freed counted", rep)
	}
	if !cache.Has("aaaaaaaaaaaaaaaa1") || cache.Has("bbbbbbbbbbbbbbbb2") {
		t.Error("the build cache prune removed the wrong step")
	}
	evs, _ := w.D.Events(ctx, "cache", 0, 10)
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "pruned 3 blobs, 1 build steps and 3 leftovers") {
		t.Errorf("events = %+v", evs)
	}

	if n := w.pull(reg, refOne, "one-again"); n != 0 {
		t.Errorf("pulling the kept image again downloaded %d blobs, want 0", n)
	}
	if n := w.pull(reg, refTwo, "two"); n != 2 { // its config and own layer; the base stayed
		t.Errorf("pulling the deleted image again downloaded %d blobs, want 2", n)
	}
	// Nothing more to prune while both are registered.
	if rep, err := w.D.PruneImages(ctx); err != nil || rep.OCIBlobs != 0 || rep.BuildSteps != 0 || rep.Leftovers != 0 {
		t.Errorf("second prune = %+v, %v; want nothing removed", rep, err)
	}
}
