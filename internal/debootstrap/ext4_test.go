package debootstrap

import (
	"banger/internal/disk"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExt4Args(t *testing.T) {
	want := []string{"-q", "-F", "-E", "root_owner=0:0", "-d", "/src", "/out.ext4", "1536M"}
	if got := ext4Args("/src", "/out.ext4", 1536); !slices.Equal(got, want) {
		t.Errorf("ext4Args = %q, want %q", got, want)
	}
}

func TestImageSize(t *testing.T) {
	for _, tc := range []struct {
		used, inodes, want int64
	}{
		{0, 0, 512 * mib},
		{100 * mib, 10, 130*mib + 512*mib},
		{100*mib + 1, 10, 131*mib + 512*mib}, // rounded up to a MiB
		{1 * mib, 10000, (10000*16<<10)*13/10/mib*mib + mib + 512*mib},
	} {
		if got := imageSize(tc.used, tc.inodes); got != tc.want {
			t.Errorf("imageSize(%d, %d) = %d MiB, want %d MiB", tc.used, tc.inodes, got/mib, tc.want/mib)
		}
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = 1
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	used, inodes, err := disk.Du(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// The hard link counts once: the directory and one 1 MiB file.
	if used < 1<<20 || used > 1<<20+64<<10 || inodes != 2 {
		t.Errorf("usage = %d bytes, %d inodes; want about 1 MiB and 2", used, inodes)
	}
}

func TestExt4FromDir(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("no mkfs.ext4")
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("vm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "rootfs.ext4")
	if err := Ext4FromDir(context.Background(), src, out, 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 512*mib+mib {
		t.Errorf("automatic image: %v, %v; want 513 MiB", fi, err)
	}
	if err := Ext4FromDir(context.Background(), src, out, 8*mib); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 8*mib {
		t.Errorf("8 MiB image: %v, %v", fi, err)
	}
	if _, err := exec.LookPath("debugfs"); err == nil {
		b, err := exec.Command("debugfs", "-R", "cat /etc/hostname", out).Output()
		if err != nil || string(b) != "vm\n" {
			t.Errorf("debugfs cat /etc/hostname = %q, %v", b, err)
		}
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
		t.Errorf("%s holds %v, want only the image", outDir, ents)
	}
}

func TestExt4FromDirTooSmall(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("no mkfs.ext4")
	}
	src := t.TempDir()
	// Not zeros: mkfs.ext4 -d keeps those as holes.
	if err := os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("banger"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	err := Ext4FromDir(context.Background(), src, filepath.Join(outDir, "rootfs.ext4"), 2*mib)
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("Ext4FromDir into 2 MiB = %v, want a 'too small' error", err)
	}
	t.Log(err)
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("failed Ext4FromDir left %v", ents)
	}
}
