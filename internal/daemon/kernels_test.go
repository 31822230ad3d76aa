package daemon_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/ext4"
)

// kernelWorld is a world whose kernel catalog offers k1, a file:// kernel.
func kernelWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	dir := t.TempDir()
	vmlinux := filepath.Join(dir, "vmlinux")
	hdr := make([]byte, 4096)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	hdr[16], hdr[18], hdr[20] = 2, 62, 1
	if err := os.WriteFile(vmlinux, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(hdr)
	cat, _ := json.Marshal(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{{
		Name: "k1", Version: "6.1.0", Arch: "x86_64",
		Kernel: api.CatalogFile{URL: "file://" + vmlinux, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(hdr))},
	}}})
	catPath := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catPath, cat, 0o644); err != nil {
		t.Fatal(err)
	}
	w.Opts.Config.KernelCatalogURL = catPath
	w.restart()
	return w
}

// leavePartial puts an interrupted download of name where a pull keeps it.
func leavePartial(t *testing.T, w *world, name string) string {
	t.Helper()
	dir := filepath.Join(w.Opts.Layout.KernelsDir, ".partial", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmlinux.partial"), []byte("half a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestRemoveKernelDiscardsPartialDownload(t *testing.T) {
	w := kernelWorld(t)
	ctx := context.Background()
	partial := leavePartial(t, w, "k1")

	// A restart keeps partial downloads, so the next pull resumes.
	w.restart()
	if !exists(partial) {
		t.Fatalf("daemon start swept the partial download %s", partial)
	}
	if err := w.D.RemoveKernel(ctx, "k1", false); err != nil {
		t.Fatalf("RemoveKernel of a partial download: %v", err)
	}
	if exists(partial) {
		t.Errorf("%s still exists after RemoveKernel", partial)
	}
	err := w.D.RemoveKernel(ctx, "k1", false)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "not pulled") {
		t.Errorf("RemoveKernel with nothing left = %v; want not found, 'not pulled'", err)
	}
	if err := w.D.RemoveKernel(ctx, "../etc", false); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("RemoveKernel(../etc) = %v; want invalid", err)
	}
}

func TestRemoveKernelDeletesRowDirAndPartial(t *testing.T) {
	w := kernelWorld(t)
	ctx := context.Background()
	k, err := w.D.PullKernel(ctx, "k1", nil)
	if err != nil {
		t.Fatal(err)
	}
	partial := leavePartial(t, w, "k1")

	root := t.TempDir()
	if _, err := w.D.RegisterImage(ctx, api.RegisterImageRequest{Name: "uses-k1", Rootfs: kernelTestRootfs(t, root), KernelRef: "k1"}); err != nil {
		t.Fatal(err)
	}
	if err := w.D.RemoveKernel(ctx, "k1", false); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "uses-k1") {
		t.Fatalf("RemoveKernel of a kernel in use = %v; want a conflict naming the image", err)
	}
	if !exists(k.Dir) || !exists(partial) {
		t.Fatal("a refused RemoveKernel deleted files")
	}

	if err := w.D.RemoveKernel(ctx, "k1", true); err != nil {
		t.Fatalf("RemoveKernel --force: %v", err)
	}
	if _, err := w.D.Kernel(ctx, "k1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("kernel row still there (err %v)", err)
	}
	for _, p := range []string{k.Dir, partial} {
		if exists(p) {
			t.Errorf("%s still exists after RemoveKernel", p)
		}
	}
}

// A row whose directory vanished is still removable.
func TestRemoveKernelWithoutItsDirectory(t *testing.T) {
	w := kernelWorld(t)
	ctx := context.Background()
	k, err := w.D.PullKernel(ctx, "k1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(k.Dir); err != nil {
		t.Fatal(err)
	}
	if err := w.D.RemoveKernel(ctx, "k1", false); err != nil {
		t.Fatalf("RemoveKernel: %v", err)
	}
	if ks, _ := w.D.Kernels(ctx); len(ks) != 0 {
		t.Errorf("kernels after remove = %+v", ks)
	}
}

// kernelTestRootfs makes an ext4 rootfs in dir for images the kernel
// tests register.
func kernelTestRootfs(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "rootfs.ext4")
	if err := ext4.Create(context.Background(), p, 32<<20, "root"); err != nil {
		t.Fatal(err)
	}
	return p
}

// Partial kernel downloads nobody resumed for a week, and empty ones, are
// swept when the daemon starts; recent ones stay so their pull resumes.
func TestStartSweepsStalePartialKernels(t *testing.T) {
	w := newWorld(t)
	partial := filepath.Join(w.Opts.Layout.KernelsDir, ".partial")
	for name, age := range map[string]time.Duration{"stale": 8 * 24 * time.Hour, "recent": time.Hour} {
		p := filepath.Join(partial, name, "vmlinux.partial")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("part"), 0o644)
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	os.MkdirAll(filepath.Join(partial, "empty"), 0o755)
	w.restart()
	ents, _ := os.ReadDir(partial)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{"recent"}; !slices.Equal(left, want) {
		t.Errorf("partial downloads after start: %q; want %q", left, want)
	}
}
