package kerneloci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api/errdefs"
	"banger/internal/kernel"
	"banger/internal/testutil/testregistry"
)

// kernelFiles makes a kernel's files: an ELF header as the kernel, an
// initrd, a modules tree with a symlink, and a config fragment.
func kernelFiles(t *testing.T) Files {
	t.Helper()
	dir := t.TempDir()
	vmlinux := make([]byte, 8192)
	copy(vmlinux, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	vmlinux[16], vmlinux[18], vmlinux[20] = 2, 62, 1
	f := Files{
		Kernel: filepath.Join(dir, "vmlinux"), Initrd: filepath.Join(dir, "initrd.img"),
		Modules: filepath.Join(dir, "modules"), Fragment: filepath.Join(dir, "fc.config"),
	}
	os.WriteFile(f.Kernel, vmlinux, 0o644)
	os.WriteFile(f.Initrd, bytes.Repeat([]byte("i"), 3000), 0o644)
	os.WriteFile(f.Fragment, []byte("CONFIG_VIRTIO_MMIO=y\n"), 0o644)
	mod := filepath.Join(f.Modules, "6.12.0", "kernel", "fs")
	os.MkdirAll(mod, 0o755)
	os.WriteFile(filepath.Join(mod, "ext4.ko"), []byte("module"), 0o644)
	os.Symlink("kernel/fs/ext4.ko", filepath.Join(f.Modules, "6.12.0", "ext4-link.ko"))
	return f
}

// A published kernel resolves to a catalog entry that kernel.Pull
// installs: the same kernel, initrd and modules tree, verified against the
// registry's digests.
func TestPublishResolvePull(t *testing.T) {
	reg := testregistry.New(t, nil)
	ctx := context.Background()
	files := kernelFiles(t)
	ref := reg.Host + "/team/kernels:6.12-fc"
	meta := Metadata{Name: "fc-6.12", Version: "6.12.0", Description: "a test kernel"}
	byDigest, err := Publish(ctx, meta, files, ref, Options{}, nil)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !strings.Contains(byDigest, "@sha256:") {
		t.Errorf("Publish returned %q, want a reference by digest", byDigest)
	}

	e, client, resolved, err := Resolve(ctx, ref, "", Options{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if resolved != byDigest {
		t.Errorf("Resolve says %s, Publish said %s", resolved, byDigest)
	}
	if e.Name != "fc-6.12" || e.Version != "6.12.0" || e.Arch != "x86_64" || e.Initrd == nil || e.Modules == nil {
		t.Fatalf("entry = %+v", e)
	}
	dir := t.TempDir()
	k, err := kernel.Pull(ctx, e, kernel.PullOptions{Dir: dir, Client: client, Source: resolved})
	if err != nil {
		t.Fatalf("kernel.Pull of the artifact: %v", err)
	}
	for got, want := range map[string]string{k.Kernel: files.Kernel, k.Initrd: files.Initrd, filepath.Join(k.Modules, "6.12.0", "kernel", "fs", "ext4.ko"): filepath.Join(files.Modules, "6.12.0", "kernel", "fs", "ext4.ko")} {
		a, _ := os.ReadFile(got)
		b, _ := os.ReadFile(want)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the published %s", got, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(k.Modules, "6.12.0", "ext4-link.ko")); err != nil || l != "kernel/fs/ext4.ko" {
		t.Errorf("modules symlink = %q, %v", l, err)
	}

	// Another name on pull; the tag list shows the tag.
	if e, _, _, err := Resolve(ctx, ref, "mine", Options{}); err != nil || e.Name != "mine" {
		t.Errorf("Resolve with a name = %q, %v", e.Name, err)
	}
	tags, err := Tags(ctx, reg.Host+"/team/kernels", Options{})
	if err != nil || !slices.Equal(tags, []string{"6.12-fc"}) {
		t.Errorf("Tags = %v, %v", tags, err)
	}
}

// What is not a banger kernel artifact is refused with a clear error.
func TestResolveRefusesOtherArtifacts(t *testing.T) {
	reg := testregistry.New(t, nil)
	ctx := context.Background()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Push(t, "team/image:v1", img)
	_, _, _, err = Resolve(ctx, ref, "", Options{})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "not a banger kernel artifact") {
		t.Errorf("resolving a container image: %v", err)
	}
	if _, _, _, err := Resolve(ctx, reg.Host+"/team/missing:v1", "", Options{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("resolving a missing tag: %v, want not found", err)
	}
	if _, err := Publish(ctx, Metadata{Name: "x"}, Files{}, reg.Host+"/team/k:v1", Options{}, nil); err == nil {
		t.Error("publishing without a kernel file succeeded")
	}
}

func TestIsRef(t *testing.T) {
	for s, want := range map[string]bool{
		"void-6.12": false, "fc_6.1": false,
		"ghcr.io/org/kernels:6.12-fc": true, "localhost:5000/k": true, "org/k": true, "k@sha256:00": true,
	} {
		if IsRef(s) != want {
			t.Errorf("IsRef(%q) = %v", s, !want)
		}
	}
}

// A registry's claims are bounded: a kernel layer claiming more than a
// kernel file may have is refused before any download, and so is metadata
// claiming to be large.
func TestHostileManifests(t *testing.T) {
	reg := testregistry.New(t, nil)
	ctx := context.Background()
	cfg := static.NewLayer([]byte(`{"name":"big","version":"1","arch":"x86_64"}`), ConfigType)
	cd, _ := describe(cfg)
	r, _ := name.ParseReference(reg.Host + "/team/k:cfg")
	if err := remote.WriteLayer(r.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	push := func(tag string, m v1.Manifest) string {
		t.Helper()
		raw, _ := json.Marshal(m)
		ref, _ := name.ParseReference(reg.Host + "/team/k:" + tag)
		if err := remote.Put(ref, rawManifest(raw)); err != nil {
			t.Fatal(err)
		}
		return ref.String()
	}
	huge := v1.Descriptor{MediaType: VmlinuxType, Size: 3 << 30, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	ref := push("huge", v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType, Config: cd, Layers: []v1.Descriptor{huge}})
	e, client, _, err := Resolve(ctx, ref, "", Options{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	before := reg.BlobGETs()
	_, err = kernel.Pull(ctx, e, kernel.PullOptions{Dir: t.TempDir(), Client: client})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "2 GiB") {
		t.Errorf("pulling a 3 GiB kernel claim: %v", err)
	}
	if n := reg.BlobGETs() - before; n != 0 {
		t.Errorf("%d blob downloads for a refused claim", n)
	}
	bigCfg := cd
	bigCfg.Size = 1 << 30
	ref = push("bigcfg", v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: bigCfg, Layers: []v1.Descriptor{huge}})
	if _, _, _, err := Resolve(ctx, ref, "", Options{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("metadata claiming 1 GiB: %v", err)
	}
	odd := huge
	odd.MediaType = "application/x-other"
	ref = push("odd", v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{huge, odd}})
	if _, _, _, err := Resolve(ctx, ref, "", Options{}); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "application/x-other") {
		t.Errorf("a layer of another type: %v", err)
	}
}
