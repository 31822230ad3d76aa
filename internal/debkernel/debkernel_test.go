package debkernel

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDepends(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
	}{
		{"bookworm", "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", "linux-image-6.1.0-56-cloud-amd64"},
		{"first of several", "linux-image-cloud-amd64\n  Recommends: firmware-linux\n  Depends: linux-image-6.12.9-cloud-amd64\n  Depends: linux-image-6.1.0-1-cloud-amd64\n", "linux-image-6.12.9-cloud-amd64"},
		{"other dependencies", "linux-image-cloud-amd64\n  Depends: initramfs-tools\n  Depends: linux-image-6.1.0-4-cloud-amd64\n", "linux-image-6.1.0-4-cloud-amd64"},
		{"virtual package", "linux-image-cloud-amd64\n  Depends: <linux-image-6.1.0-5-cloud-amd64>\n", ""},
		{"ubuntu kvm flavour", "linux-image-kvm\n  Depends: linux-image-6.8.0-1012-kvm\n", "linux-image-6.8.0-1012-kvm"},
		{"unknown package", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseDepends([]byte(tc.out))
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("parseDepends = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestModulesPackage(t *testing.T) {
	for pkg, want := range map[string]string{
		"linux-image-6.8.0-1012-kvm":       "linux-modules-6.8.0-1012-kvm",
		"linux-image-6.1.0-56-cloud-amd64": "linux-modules-6.1.0-56-cloud-amd64", // asked, absent on Debian
		"linux-image-unsigned-6.8.0-1-kvm": "",
		"busybox":                          "",
	} {
		if got := modulesPackage(pkg); got != want {
			t.Errorf("modulesPackage(%q) = %q, want %q", pkg, got, want)
		}
	}
}

// fakeKernel lays out a fetched kernel for release under dir, with lib
// being "lib" or "usr/lib".
func fakeKernel(t *testing.T, dir, lib, release string) {
	t.Helper()
	for _, p := range []string{
		filepath.Join(dir, rootDir, lib, "modules", release, "kernel", "drivers", "virtio_blk.ko"),
		filepath.Join(dir, rootDir, "boot", "vmlinuz-"+release),
		filepath.Join(dir, initrdGz),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	for _, lib := range []string{"lib", "usr/lib"} {
		t.Run(lib, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kernel")
			fakeKernel(t, dir, lib, "6.1.0-56-cloud-amd64")
			// Load makes relative paths absolute.
			t.Chdir(filepath.Dir(dir))
			k, err := Load("kernel")
			if err != nil {
				t.Fatal(err)
			}
			want := Kernel{
				Release: "6.1.0-56-cloud-amd64",
				Vmlinuz: filepath.Join(dir, "root/boot/vmlinuz-6.1.0-56-cloud-amd64"),
				Modules: filepath.Join(dir, "root", lib, "modules/6.1.0-56-cloud-amd64"),
				Initrd:  filepath.Join(dir, "initrd.gz"),
			}
			if k != want {
				t.Errorf("Load = %+v\nwant %+v", k, want)
			}
		})
	}
}

func TestLoadBroken(t *testing.T) {
	const rel = "6.1.0-56-cloud-amd64"
	for _, tc := range []struct {
		name   string
		break_ func(dir string) error
		want   string
	}{
		{"missing dir", os.RemoveAll, "holds no fetched kernel"},
		{"no modules", func(dir string) error { return os.RemoveAll(filepath.Join(dir, "root/lib")) }, "holds no fetched kernel"},
		{"two releases", func(dir string) error {
			return os.Mkdir(filepath.Join(dir, "root/lib/modules/6.1.0-1-cloud-amd64"), 0o755)
		}, "2 kernel releases"},
		{"no vmlinuz", func(dir string) error { return os.Remove(filepath.Join(dir, "root/boot/vmlinuz-"+rel)) }, "incomplete"},
		{"no initrd", func(dir string) error { return os.Remove(filepath.Join(dir, "initrd.gz")) }, "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "kernel")
			fakeKernel(t, dir, "lib", rel)
			if err := tc.break_(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fetch again") {
				t.Errorf("Load = %v, want an error mentioning %q and how to fix it", err, tc.want)
			}
		})
	}
}

func TestFetchRefusesExistingKernel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kernel")
	fakeKernel(t, dir, "lib", "6.1.0-56-cloud-amd64")
	_, err := Fetch(context.Background(), dir, Options{Package: "linux-image-6.1.0-56-cloud-amd64"})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Fetch over a kernel = %v, want an 'already exists' error", err)
	}
}

func TestFetchMissingTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Fetch(context.Background(), filepath.Join(t.TempDir(), "kernel"), Options{})
	if err == nil || !strings.Contains(err.Error(), "apt-get install") {
		t.Fatalf("Fetch without tools = %v, want an error saying what to install", err)
	}
}

// slow skips t unless BANGER_SLOW=1: the test downloads from the host's
// apt mirror.
func slow(t *testing.T) {
	t.Helper()
	if os.Getenv("BANGER_SLOW") != "1" {
		t.Skip("downloads a kernel from the apt mirror; set BANGER_SLOW=1 to run")
	}
}

func TestFetch(t *testing.T) {
	slow(t)
	dir := filepath.Join(t.TempDir(), "kernels", "debian")
	var steps []string
	start := time.Now()
	k, err := Fetch(t.Context(), dir, Options{Progress: func(msg string) { steps = append(steps, msg) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched %s in %s; steps: %q", k.Release, time.Since(start).Round(time.Millisecond), steps)
	if len(steps) < 4 || !strings.HasPrefix(steps[1], "downloading linux-image-") {
		t.Errorf("progress steps = %q, want resolving, downloading, unpacking, building", steps)
	}
	if !strings.HasSuffix(k.Release, "-cloud-amd64") {
		t.Errorf("release %q is not a cloud kernel", k.Release)
	}
	for _, p := range []string{k.Vmlinuz, k.Initrd, filepath.Join(k.Modules, "modules.order")} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (size %v)", p, err, fi)
		}
	}
	if cpio := gunzip(t, k.Initrd); !bytes.Contains(cpio, []byte("virtio_blk.ko")) {
		t.Errorf("initramfs %s does not carry virtio_blk.ko", k.Initrd)
	}
	if loaded, err := Load(dir); err != nil || loaded != k {
		t.Errorf("Load = %+v, %v; want %+v", loaded, err, k)
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("%s holds %d entries, want only the kernel (no temp left)", filepath.Dir(dir), len(ents))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 0 {
		t.Errorf("the downloaded package was kept: %v", debs)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchCancelled(t *testing.T) {
	slow(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "kernel")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := Fetch(ctx, dir, Options{Progress: func(msg string) {
		if strings.HasPrefix(msg, "downloading") {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Fetch = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("cancelled Fetch left %v in %s", ents, parent)
	}
}

func TestFetchUnknownPackage(t *testing.T) {
	for _, tool := range []string{"apt-get", "dpkg-deb", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	parent := t.TempDir()
	_, err := Fetch(t.Context(), filepath.Join(parent, "kernel"), Options{Package: "linux-image-0.0.0-banger-test-amd64"})
	if err == nil || !strings.Contains(err.Error(), "apt-get update") || !strings.Contains(err.Error(), "linux-image-0.0.0-banger-test-amd64") {
		t.Fatalf("Fetch of an unknown package = %v, want the apt-get error and a hint", err)
	}
	t.Log(err)
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("failed Fetch left %v in %s", ents, parent)
	}
}
