package kernel

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"banger/api"
)

// TestCatalogEntryScript runs scripts/kernel-catalog-entry the way a
// publisher would and checks that banger accepts what it prints.
func TestCatalogEntryScript(t *testing.T) {
	for _, tool := range []string{"bash", "tar", "gzip", "sha256sum", "stat", "find"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	script, err := filepath.Abs("../../scripts/kernel-catalog-entry")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	kernel := randomBytes(4096, 3)
	write(t, filepath.Join(src, "vmlinux"), kernel)
	write(t, filepath.Join(src, "initrd.img"), []byte("initrd"))
	mods := filepath.Join(src, "lib/modules/6.1.0-banger")
	write(t, filepath.Join(mods, "kernel/drivers/net/virtio_net.ko"), []byte("ko"))
	write(t, filepath.Join(mods, "modules.dep"), []byte("kernel/drivers/net/virtio_net.ko:\n"))
	// modules_install leaves this dangling link; the script must drop it.
	if err := os.Symlink("/usr/src/linux-6.1", filepath.Join(mods, "build")); err != nil {
		t.Fatal(err)
	}

	run := func(outDir string) api.CatalogEntry {
		t.Helper()
		cmd := exec.Command("bash", script, "--name", "test-6.1", "--version", "6.1.0", "--arch", "x86_64",
			"--base-url", "https://kernels.example/test-6.1/", "--kernel", "vmlinux", "--initrd", "initrd.img",
			"--modules-dir", mods, "--description", `a "quoted" \ description`, "--out-dir", outDir)
		cmd.Dir = src
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("script failed: %v\n%s", err, stderr.String())
		}
		var e api.CatalogEntry
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("script output is not a catalog entry: %v\n%s", err, out)
		}
		return e
	}
	out1, out2 := t.TempDir(), t.TempDir()
	e := run(out1)
	if err := Validate(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{e}}); err != nil {
		t.Fatal(err)
	}
	if e.Description != `a "quoted" \ description` {
		t.Errorf("description: got %q", e.Description)
	}
	if want := catalogFile("https://kernels.example/test-6.1/vmlinux", kernel); e.Kernel != want {
		t.Errorf("kernel: got %+v, want %+v", e.Kernel, want)
	}
	if e.Initrd == nil || e.Modules == nil || e.Modules.URL != "https://kernels.example/test-6.1/test-6.1-modules.tar.gz" {
		t.Fatalf("initrd %+v, modules %+v: want both, modules at base-url/test-6.1-modules.tar.gz", e.Initrd, e.Modules)
	}

	// Same tree, newer times: the tarball must not change.
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(mods, "modules.dep"), later, later)
	if e2 := run(out2); *e2.Modules != *e.Modules {
		t.Errorf("modules tarball is not reproducible: %+v then %+v", *e.Modules, *e2.Modules)
	}

	tarball, err := os.Open(filepath.Join(out1, "test-6.1-modules.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer tarball.Close()
	root := t.TempDir()
	if err := untar(tarball, root); err != nil {
		t.Fatalf("banger refuses the script's tarball: %v", err)
	}
	want := []string{"6.1.0-banger", "6.1.0-banger/kernel", "6.1.0-banger/kernel/drivers",
		"6.1.0-banger/kernel/drivers/net", "6.1.0-banger/kernel/drivers/net/virtio_net.ko", "6.1.0-banger/modules.dep"}
	if got := listTree(t, root); !slices.Equal(got, want) {
		t.Errorf("tarball holds %q, want %q", got, want)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
