package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// writeFile writes data to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ext4Header is the smallest file CheckExt4 accepts: zeroes with the
// superblock magic at 1024+56.
func ext4Header() []byte {
	b := make([]byte, 4096)
	b[sbOffset+magicOff], b[sbOffset+magicOff+1] = 0x53, 0xEF
	return b
}

// elfHeader is a 64-bit x86-64 ELF executable header.
func elfHeader() []byte {
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	h[16], h[18], h[20] = 2, 62, 1
	return h
}

func bzImageHeader() []byte {
	h := make([]byte, 0x400)
	copy(h[0x202:], "HdrS")
	return h
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for valid, else a fragment of the error
	}{
		{"base", ""},
		{"a", ""},
		{"debian-12", ""},
		{"0day", ""},
		{strings.Repeat("a", 63), ""},
		{"", "name is required"},
		{strings.Repeat("a", 64), "not a DNS label"},
		{"Base", "not a DNS label"},
		{"under_score", "not a DNS label"},
		{"-lead", "not a DNS label"},
		{"trail-", "not a DNS label"},
		{"dot.ted", "not a DNS label"},
		{"../up", "not a DNS label"},
	}
	for _, tt := range tests {
		err := ValidateName("image", tt.name)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "image name") {
			t.Errorf("ValidateName(%q) = %v, want invalid mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckExt4(t *testing.T) {
	dir := t.TempDir()
	noMagic := make([]byte, 4096)
	tests := []struct {
		name string
		path string
		want string // "" for valid
	}{
		{"ext4", writeFile(t, dir, "ok.ext4", ext4Header()), ""},
		{"no magic", writeFile(t, dir, "zero.img", noMagic), "not an ext4 filesystem image"},
		{"shorter than the superblock", writeFile(t, dir, "short.img", []byte("tiny")), "not an ext4 filesystem image"},
		{"empty", writeFile(t, dir, "empty.img", nil), "not an ext4 filesystem image"},
		{"missing", filepath.Join(dir, "missing.ext4"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"relative", "rootfs.ext4", "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckExt4("--rootfs", tt.path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckExt4 = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "--rootfs") {
				t.Errorf("CheckExt4 = %v, want invalid starting with the flag and mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckKernel(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		want string
	}{
		{"elf vmlinux", writeFile(t, dir, "vmlinux", elfHeader()), ""},
		{"bzImage", writeFile(t, dir, "bzImage", bzImageHeader()), ""},
		{"ext4 image", writeFile(t, dir, "rootfs.ext4", ext4Header()), "neither an ELF vmlinux nor a bzImage"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"relative", "vmlinux", "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKernel("--kernel", tt.path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckKernel = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "--kernel") {
				t.Errorf("CheckKernel = %v, want invalid starting with the flag and mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f", nil)
	for _, tt := range []struct{ path, want string }{
		{dir, ""},
		{file, "is not a directory"},
		{filepath.Join(dir, "missing"), "no such file"},
		{"modules", "must be an absolute path"},
	} {
		err := CheckDir("--modules", tt.path)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckDir(%q) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func TestCheckRegister(t *testing.T) {
	dir := t.TempDir()
	rootfs := writeFile(t, dir, "rootfs.ext4", ext4Header())
	kernel := writeFile(t, dir, "vmlinux", elfHeader())
	junk := writeFile(t, dir, "junk", []byte("junk"))
	good := api.RegisterImageRequest{Name: "base", Rootfs: rootfs, Kernel: kernel}
	tests := []struct {
		name string
		mut  func(*api.RegisterImageRequest)
		want string
	}{
		{"minimal", func(*api.RegisterImageRequest) {}, ""},
		{"everything", func(r *api.RegisterImageRequest) { r.WorkSeed, r.Initrd, r.Modules = rootfs, junk, dir }, ""},
		{"no name", func(r *api.RegisterImageRequest) { r.Name = "" }, "--name"},
		{"bad name", func(r *api.RegisterImageRequest) { r.Name = "Base" }, "not a DNS label"},
		{"no rootfs", func(r *api.RegisterImageRequest) { r.Rootfs = "" }, "--rootfs is required"},
		{"rootfs not ext4", func(r *api.RegisterImageRequest) { r.Rootfs = junk }, "--rootfs"},
		{"work seed not ext4", func(r *api.RegisterImageRequest) { r.WorkSeed = junk }, "--work-seed"},
		{"no kernel", func(r *api.RegisterImageRequest) { r.Kernel = "" }, "--kernel-ref"},
		{"kernel not a kernel", func(r *api.RegisterImageRequest) { r.Kernel = junk }, "--kernel"},
		{"initrd missing", func(r *api.RegisterImageRequest) { r.Initrd = filepath.Join(dir, "nope") }, "--initrd"},
		{"modules a file", func(r *api.RegisterImageRequest) { r.Modules = junk }, "--modules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := good
			tt.mut(&req)
			err := CheckRegister(req)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckRegister = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckRegister = %v, want invalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestApparentSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	if got, want := ApparentSize(p), int64(1<<30); got != want {
		t.Errorf("ApparentSize = %d, want %d", got, want)
	}
	if got := ApparentSize(p + ".missing"); got != 0 {
		t.Errorf("ApparentSize of a missing file = %d, want 0", got)
	}
}
