package doctor

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/config"
	"banger/internal/paths"
)

// fcEnv is an Env for the Firecracker checks with state under a temp dir.
func fcEnv(t *testing.T) *Env {
	dir := t.TempDir()
	return &Env{
		Config:    config.Default(), // vmm = "firecracker"
		Layout:    paths.New(filepath.Join(dir, "c"), filepath.Join(dir, "s"), filepath.Join(dir, "k"), filepath.Join(dir, "r")),
		LookPath:  func(string) (string, error) { return "", errors.New("not found") },
		KVMDevice: filepath.Join(dir, "kvm"),
	}
}

// elfVmlinux writes a 64-bit x86-64 ELF executable header followed by
// extra, which is what kernel.Format and the cmdline-devices probe read.
func elfVmlinux(t *testing.T, extra string) string {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1                // 64-bit, little endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 62) // EM_X86_64
	binary.LittleEndian.PutUint32(h[20:], 1)
	// Put the marker across what would be a read boundary for small buffers.
	data := append(h, make([]byte, 1<<20-10)...)
	data = append(data, extra...)
	p := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func bzImage(t *testing.T) string {
	data := make([]byte, 0x300)
	copy(data[0x202:], "HdrS")
	p := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(p, data, 0o644)
	return p
}

func TestKernelCheck(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a kernel"), 0o644)
	tests := []struct {
		name   string
		kernel string
		want   Status
		detail string
	}{
		{"firecracker kernel", elfVmlinux(t, "\x00virtio_mmio.device\x00"), Pass, "virtio-mmio command-line devices"},
		{"no cmdline devices", elfVmlinux(t, "virtio_mmio"), Warn, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"},
		{"bzImage", bzImage(t), Warn, "a bzImage"},
		{"not a kernel", junk, Fail, "neither an ELF vmlinux nor a bzImage"},
		{"no image", "", Warn, `no image named "default"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fcEnv(t)
			e.DefaultImageKernel = func(context.Context) (string, error) { return tt.kernel, nil }
			r := checkKernel(context.Background(), e)
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("checkKernel = %+v, want %s with %q", r, tt.want, tt.detail)
			}
			if r.Status != Pass && tt.kernel != "" && !strings.Contains(r.Fix, "build-firecracker-kernel") {
				t.Errorf("fix %q does not say how to get a Firecracker kernel", r.Fix)
			}
		})
	}
}

func TestKernelCheckReadsManagedImages(t *testing.T) {
	e := fcEnv(t)
	k := bzImage(t)
	for i, im := range []map[string]any{
		{"name": "other", "kernel": "/nope", "updated_at": "2024-01-01T00:00:00Z"},
		{"name": "default", "kernel": k, "updated_at": "2024-01-02T00:00:00Z"},
	} {
		dir := filepath.Join(e.Layout.ImagesDir, im["name"].(string)+"-"+string(rune('a'+i)))
		os.MkdirAll(dir, 0o700)
		data, _ := json.Marshal(im)
		os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o600)
	}
	r := checkKernel(context.Background(), e)
	if r.Status != Warn || !strings.Contains(r.Detail, k) {
		t.Errorf("checkKernel = %+v, want a warning about %s", r, k)
	}
}

func TestKernelCheckUnderQEMU(t *testing.T) {
	e := fcEnv(t)
	e.Config.VMM = "qemu"
	e.DefaultImageKernel = func(context.Context) (string, error) { return bzImage(t), nil }
	if r := checkKernel(context.Background(), e); r.Status != Pass {
		t.Errorf("checkKernel under qemu = %+v, want pass", r)
	}
}

func TestKVMCheckSaysWhatIsMissing(t *testing.T) {
	e := fcEnv(t)
	r := checkKVM(context.Background(), e)
	if r.Status != Fail || !strings.Contains(r.Detail, "does not exist") || !strings.Contains(r.Fix, "modprobe") || !strings.Contains(r.Fix, `vmm = "qemu"`) {
		t.Errorf("missing device under firecracker = %+v", r)
	}
	os.WriteFile(e.KVMDevice, nil, 0o600)
	r = checkKVM(context.Background(), e)
	if r.Status != Fail || !strings.Contains(r.Detail, "KVM_GET_API_VERSION") {
		t.Errorf("a plain file as the device = %+v", r)
	}
	if os.Getuid() != 0 {
		os.Chmod(e.KVMDevice, 0)
		r = checkKVM(context.Background(), e)
		if r.Status != Fail || !strings.Contains(r.Fix, "usermod -aG kvm") {
			t.Errorf("unreadable device = %+v", r)
		}
	}
	e.Config.VMM = "qemu"
	os.Remove(e.KVMDevice)
	if r := checkKVM(context.Background(), e); r.Status != Warn || !strings.Contains(r.Fix, "software emulation") {
		t.Errorf("missing device under qemu = %+v, want a warning", r)
	}
}

func TestVMMCheckFirecracker(t *testing.T) {
	script := func(version string) string {
		p := filepath.Join(t.TempDir(), "firecracker")
		os.WriteFile(p, []byte("#!/bin/sh\necho 'Firecracker "+version+"'\n"), 0o755)
		return p
	}
	plain := filepath.Join(t.TempDir(), "firecracker")
	os.WriteFile(plain, []byte("data"), 0o644)
	tests := []struct {
		name, bin string
		want      Status
		text      string
	}{
		{"current", script("v1.16.1"), Pass, "v1.16.1"},
		{"too old", script("v1.10.0"), Fail, "needs v1.15 or newer"},
		{"not firecracker", script("x"), Fail, "not a Firecracker version"},
		{"not executable", plain, Fail, "not an executable file"},
	}
	for _, tt := range tests {
		e := fcEnv(t)
		e.Config.FirecrackerBin = tt.bin
		r := checkVMM(context.Background(), e)
		if r.Status != tt.want || !strings.Contains(r.Detail, tt.text) {
			t.Errorf("%s: checkVMM = %+v, want %s with %q", tt.name, r, tt.want, tt.text)
		}
	}
	e := fcEnv(t)
	r := checkVMM(context.Background(), e)
	if r.Status != Fail || !strings.Contains(r.Fix, "firecracker_bin") {
		t.Errorf("no firecracker in PATH = %+v", r)
	}
}

func TestFileContainsAcrossReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 1<<20+5) // the needle straddles the first read
	data = append(data, "needle"...)
	os.WriteFile(p, data, 0o600)
	if ok, err := fileContains(p, []byte("needle")); !ok || err != nil {
		t.Errorf("fileContains = %v, %v; want true", ok, err)
	}
	if ok, _ := fileContains(p, []byte("absent")); ok {
		t.Error("found a needle that is not there")
	}
}

func TestDefaultImageToolsCheck(t *testing.T) {
	ctx := context.Background()
	e := fcEnv(t)
	e.Config.VMM = "qemu"
	have := map[string]bool{"apt-get": true, "apt-cache": true, "dpkg-deb": true, "busybox": true, "chroot": true}
	e.LookPath = func(name string) (string, error) {
		if have[name] {
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}
	r := checkDefaultImageTools(ctx, e)
	if r.Status != Warn || !strings.Contains(r.Detail, "missing debootstrap") || !strings.Contains(r.Fix, "debootstrap") {
		t.Errorf("without debootstrap: %+v", r)
	}
	have["debootstrap"] = true
	if r := checkDefaultImageTools(ctx, e); r.Status != Pass {
		t.Errorf("with every tool: %+v", r)
	}
	e.Config.DefaultImageSource = "oci"
	e.Config.VMM = "firecracker"
	have = map[string]bool{}
	if r := checkDefaultImageTools(ctx, e); r.Status != Pass || !strings.Contains(r.Detail, "debian:bookworm") {
		t.Errorf("oci source under firecracker needs no host tools: %+v", r)
	}
	e.DefaultImageKernel = func(context.Context) (string, error) { return "/images/default/kernel", nil }
	e.defKernel = nil // a new run looks the kernel up again
	if r := checkDefaultImageTools(ctx, e); r.Status != Pass || !strings.Contains(r.Detail, "exists") {
		t.Errorf("with the image registered: %+v", r)
	}
}
