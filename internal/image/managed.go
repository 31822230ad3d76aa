package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/api"
	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/progress"
)

// File names inside a managed image directory.
const (
	RootfsFile   = "rootfs.ext4"
	WorkSeedFile = "work-seed.ext4"
	KernelFile   = "kernel"
	InitrdFile   = "initrd"
	ModulesDir   = "modules"
	ManifestFile = "manifest.json"
	stagingPref  = ".staging-"
)

// Promote copies im's host files into a new daemon-owned directory under
// imagesDir and returns the image rewritten to point there. The directory
// appears atomically (staging directory + rename); on error nothing is
// left behind. Kernel files of an image booting a catalog kernel
// (KernelRef) already belong to the daemon and are not copied.
func Promote(ctx context.Context, im api.Image, imagesDir string, p progress.Func) (api.Image, error) {
	staging := filepath.Join(imagesDir, stagingPref+im.Name+"-"+fsutil.RandomHex())
	if err := os.Mkdir(staging, 0o700); err != nil {
		return api.Image{}, fmt.Errorf("creating staging directory: %w", err)
	}
	out, err := stage(ctx, im, staging, p)
	if err != nil {
		os.RemoveAll(staging)
		return api.Image{}, err
	}
	final := filepath.Join(imagesDir, im.Name+"-"+fsutil.RandomHex())
	if err := os.Rename(staging, final); err != nil {
		os.RemoveAll(staging)
		return api.Image{}, fmt.Errorf("moving image into place: %w", err)
	}
	if err := fsutil.SyncDir(imagesDir); err != nil {
		os.RemoveAll(final)
		return api.Image{}, err
	}
	return rebase(out, staging, final), nil
}

type copyItem struct {
	src  *string
	name string
	tree bool
}

func stage(ctx context.Context, im api.Image, dir string, p progress.Func) (api.Image, error) {
	items := []copyItem{{&im.Rootfs, RootfsFile, false}, {&im.WorkSeed, WorkSeedFile, false}}
	if im.KernelRef == "" {
		items = append(items, copyItem{&im.Kernel, KernelFile, false}, copyItem{&im.Initrd, InitrdFile, false}, copyItem{&im.Modules, ModulesDir, true})
	}
	for _, it := range items {
		if *it.src == "" {
			continue
		}
		dst := filepath.Join(dir, it.name)
		if err := copyOne(ctx, *it.src, dst, it.tree, p); err != nil {
			return api.Image{}, err
		}
		*it.src = dst
	}
	im.Managed = true
	im.Dir = dir
	im.Size = ApparentSize(im.Rootfs)
	im.UpdatedAt = time.Now()
	if err := writeManifest(dir, im); err != nil {
		return api.Image{}, err
	}
	return im, fsutil.SyncDir(dir)
}

func copyOne(ctx context.Context, src, dst string, tree bool, p progress.Func) error {
	if tree {
		p.Step("copy", "copying "+filepath.Base(dst))
		if err := disk.CopyTree(ctx, src, dst); err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		return nil
	}
	total, err := disk.DataSize(src)
	if err != nil {
		return fmt.Errorf("sizing %s: %w", src, err)
	}
	c := progress.NewCounter(p, "copy", filepath.Base(dst), total)
	if _, err := disk.Copy(ctx, src, dst, disk.WithProgress(c)); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	c.Done()
	return nil
}

// rebase rewrites paths under from to live under to.
func rebase(im api.Image, from, to string) api.Image {
	for _, p := range []*string{&im.Rootfs, &im.WorkSeed, &im.Kernel, &im.Initrd, &im.Modules, &im.Dir} {
		if rest, ok := strings.CutPrefix(*p, from); ok {
			*p = to + rest
		}
	}
	return im
}

func writeManifest(dir string, im api.Image) error {
	data, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ManifestFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing manifest: %w", err)
	}
	return f.Close()
}

// Sweep removes from imagesDir every staging leftover and every managed
// directory that no image row references (keep holds referenced paths).
// It returns what it removed. Run it at daemon start, before serving.
func Sweep(imagesDir string, keep map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(imagesDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", imagesDir, err)
	}
	var removed []string
	for _, e := range entries {
		path := filepath.Join(imagesDir, e.Name())
		if keep[path] {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return removed, fmt.Errorf("removing leftover %s: %w", path, err)
		}
		removed = append(removed, path)
	}
	return removed, nil
}
