package image

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/api"
)

// dirNames lists dir's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestSweepRemovesWhatNoRowReferences(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "base-1a2b3c4d")
	for _, d := range []string{
		kept,
		filepath.Join(dir, stagingPref+"base-deadbeef"), // a crashed promote
		filepath.Join(dir, "gone-0badf00d"),             // its row was deleted
	} {
		if err := os.MkdirAll(filepath.Join(d, "modules"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, d, RootfsFile, []byte("data"))
	}
	writeFile(t, dir, "stray", []byte("x"))

	removed, err := Sweep(dir, map[string]bool{kept: true})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{filepath.Join(dir, stagingPref+"base-deadbeef"), filepath.Join(dir, "gone-0badf00d"), filepath.Join(dir, "stray")}
	slices.Sort(want)
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{filepath.Base(kept)}) {
		t.Errorf("images dir after sweep = %v, want only %s", got, filepath.Base(kept))
	}
	if _, err := os.Stat(filepath.Join(kept, RootfsFile)); err != nil {
		t.Errorf("sweep touched a referenced image: %v", err)
	}
}

func TestSweepMissingDir(t *testing.T) {
	if _, err := Sweep(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Error("Sweep of a missing dir succeeded; want an error naming it")
	}
}

// srcImage is an unmanaged image whose files live in a temp dir.
func srcImage(t *testing.T) api.Image {
	t.Helper()
	dir := t.TempDir()
	mods := filepath.Join(dir, "modules", "6.1.0")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, mods, "virtio.ko", []byte("ko"))
	return api.Image{
		Name:     "base",
		Rootfs:   writeFile(t, dir, "rootfs.ext4", append(ext4Header(), bytes.Repeat([]byte{7}, 1<<16)...)),
		WorkSeed: writeFile(t, dir, "seed.ext4", ext4Header()),
		Kernel:   writeFile(t, dir, "vmlinux", elfHeader()),
		Initrd:   writeFile(t, dir, "initrd.img", []byte("initrd")),
		Modules:  filepath.Join(dir, "modules"),
		Source:   "register",
	}
}

func TestPromoteCopiesIntoAManagedDir(t *testing.T) {
	imagesDir := t.TempDir()
	src := srcImage(t)
	var steps []string
	im, err := Promote(context.Background(), src, imagesDir, func(ev api.Event) {
		if ev.Step != "" && !slices.Contains(steps, ev.Step) {
			steps = append(steps, ev.Step)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !im.Managed || filepath.Dir(im.Dir) != imagesDir || !strings.HasPrefix(filepath.Base(im.Dir), "base-") {
		t.Fatalf("promoted = %+v, want managed in %s/base-*", im, imagesDir)
	}
	for _, c := range []struct{ got, src, name string }{
		{im.Rootfs, src.Rootfs, RootfsFile},
		{im.WorkSeed, src.WorkSeed, WorkSeedFile},
		{im.Kernel, src.Kernel, KernelFile},
		{im.Initrd, src.Initrd, InitrdFile},
		{filepath.Join(im.Modules, "6.1.0", "virtio.ko"), filepath.Join(src.Modules, "6.1.0", "virtio.ko"), filepath.Join(ModulesDir, "6.1.0", "virtio.ko")},
	} {
		if want := filepath.Join(im.Dir, c.name); c.got != want {
			t.Errorf("path = %s, want %s", c.got, want)
		}
		got, err := os.ReadFile(c.got)
		want, _ := os.ReadFile(c.src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("copy %s differs from %s (err %v)", c.got, c.src, err)
		}
	}
	if im.Size != ApparentSize(src.Rootfs) {
		t.Errorf("size = %d, want the rootfs's %d", im.Size, ApparentSize(src.Rootfs))
	}
	if !slices.Contains(steps, "copy") {
		t.Errorf("progress steps = %v, want copy", steps)
	}
	// The manifest describes the image as it was staged; what matters is
	// that it names it and that no staging dir is left.
	data, err := os.ReadFile(filepath.Join(im.Dir, ManifestFile))
	var man api.Image
	if err != nil || json.Unmarshal(data, &man) != nil || man.Name != "base" || !man.Managed {
		t.Errorf("manifest = %s (err %v)", data, err)
	}
	if got := dirNames(t, imagesDir); len(got) != 1 || got[0] != filepath.Base(im.Dir) {
		t.Errorf("images dir = %v, want only %s", got, filepath.Base(im.Dir))
	}
}

func TestPromoteKeepsCatalogKernelInPlace(t *testing.T) {
	src := srcImage(t)
	src.KernelRef = "k1"
	im, err := Promote(context.Background(), src, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Kernel != src.Kernel || im.Initrd != src.Initrd || im.Modules != src.Modules {
		t.Errorf("kernel files of a catalog kernel moved: %+v", im)
	}
}

func TestPromoteFailureLeavesNothing(t *testing.T) {
	imagesDir := t.TempDir()
	src := srcImage(t)
	src.Initrd = filepath.Join(t.TempDir(), "vanished")
	if _, err := Promote(context.Background(), src, imagesDir, nil); err == nil || !strings.Contains(err.Error(), "vanished") {
		t.Fatalf("Promote with a missing initrd = %v, want an error naming it", err)
	}
	if got := dirNames(t, imagesDir); len(got) != 0 {
		t.Errorf("a failed promote left %v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Promote(ctx, srcImage(t), imagesDir, nil); err == nil {
		t.Fatal("Promote with a cancelled context succeeded")
	}
	if got := dirNames(t, imagesDir); len(got) != 0 {
		t.Errorf("a cancelled promote left %v", got)
	}
}

func TestRebase(t *testing.T) {
	im := api.Image{Dir: "/s/.staging-x", Rootfs: "/s/.staging-x/rootfs.ext4", Kernel: "/host/vmlinux", Modules: "/s/.staging-x/modules"}
	got := rebase(im, "/s/.staging-x", "/s/x-1")
	want := api.Image{Dir: "/s/x-1", Rootfs: "/s/x-1/rootfs.ext4", Kernel: "/host/vmlinux", Modules: "/s/x-1/modules"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rebase (-want +got):\n%s", diff)
	}
}
