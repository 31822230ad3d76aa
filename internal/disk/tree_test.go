package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// entry is what a tree comparison looks at for one path.
type entry struct {
	Mode   fs.FileMode
	Link   string // symlink target
	SHA256 string // regular file content
}

// snapshot describes the tree under root without following symlinks.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{Mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.Mode = fs.ModeSymlink // link permissions mean nothing on Linux
			e.Link, err = os.Readlink(path)
		case info.Mode().IsRegular():
			e.SHA256 = digest(t, path)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// modulesTree builds a small stand-in for /lib/modules/<version>.
func modulesTree(t *testing.T, root string) {
	t.Helper()
	mkdir := func(p string, m fs.FileMode) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(root, p), 0o755) }) // let TempDir remove it
		if err := os.Chmod(filepath.Join(root, p), m); err != nil {
			t.Fatal(err)
		}
	}
	file := func(p string, m fs.FileMode, segs []segment) {
		writeLayout(t, filepath.Join(root, p), segs)
		if err := os.Chmod(filepath.Join(root, p), m); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("kernel/drivers/net", 0o755)
	file("kernel/drivers/net/virtio_net.ko", 0o644, []segment{{random, 300 * kib}})
	file("kernel/drivers/net/sparse.ko", 0o600, []segment{{hole, mib}, {random, 4 * kib}})
	file("modules.dep", 0o644, []segment{{random, 1000}})
	file("empty", 0o444, nil)
	link("kernel/drivers/net/virtio_net.ko", "virtio.ko")
	link("kernel", "kernel-link")
	link("/usr/src/linux-headers", "build") // dangling and outside: copied, not followed
	link("../../etc/passwd", "escape")
	file("kernel/drivers/run.sh", 0o755, []segment{{random, 10}})
	// Read-only, with content: its mode can only go on after it is filled.
	file("kernel/extra.ko", 0o644, []segment{{random, 10}})
	mkdir("kernel", 0o555)
}

func TestCopyTree(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "6.1.0"), filepath.Join(t.TempDir(), "copy")
	modulesTree(t, src)
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "kernel"), 0o755) })

	if err := CopyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(snapshot(t, src), snapshot(t, dst)); diff != "" {
		t.Errorf("copied tree differs (-src +dst):\n%s", diff)
	}
	_, srcAlloc, _ := Usage(filepath.Join(src, "kernel/drivers/net/sparse.ko"))
	_, dstAlloc, _ := Usage(filepath.Join(dst, "kernel/drivers/net/sparse.ko"))
	if dstAlloc > srcAlloc {
		t.Errorf("sparse.ko allocated %d bytes in the copy, want at most %d", dstAlloc, srcAlloc)
	}
}

func TestCopyTreeErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, src, dst string) (from string)
		wantErr string
		dstKept bool
	}{
		{
			name: "FIFO inside",
			setup: func(t *testing.T, src, dst string) string {
				if err := unix.Mkfifo(filepath.Join(src, "kernel/drivers/fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
				return src
			},
			wantErr: "/kernel/drivers/fifo is a named pipe (FIFO); only regular files, directories and symlinks can be copied",
		},
		{
			name: "dst exists",
			setup: func(t *testing.T, src, dst string) string {
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
				return src
			},
			wantErr: "file exists", dstKept: true,
		},
		{
			name: "src is a symlink",
			setup: func(t *testing.T, src, dst string) string {
				link := filepath.Join(t.TempDir(), "link")
				if err := os.Symlink(src, link); err != nil {
					t.Fatal(err)
				}
				return link
			},
			wantErr: "is a symlink, not a directory",
		},
		{
			name: "src is a file",
			setup: func(t *testing.T, src, dst string) string {
				return filepath.Join(src, "modules.dep")
			},
			wantErr: "is a regular file, not a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := filepath.Join(t.TempDir(), "6.1.0"), filepath.Join(t.TempDir(), "copy")
			modulesTree(t, src)
			from := tt.setup(t, src, dst)

			err := CopyTree(context.Background(), from, dst)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CopyTree error = %v, want one containing %q", err, tt.wantErr)
			}
			_, statErr := os.Lstat(dst)
			if tt.dstKept && statErr != nil {
				t.Errorf("existing dst was removed: %v", statErr)
			}
			if !tt.dstKept && !errors.Is(statErr, fs.ErrNotExist) {
				t.Errorf("dst left behind: Lstat error = %v", statErr)
			}
		})
	}
}

func TestCopyTreeCanceled(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "6.1.0"), filepath.Join(t.TempDir(), "copy")
	modulesTree(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := CopyTree(ctx, src, dst); !errors.Is(err, context.Canceled) {
		t.Fatalf("CopyTree error = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dst left behind: Lstat error = %v", err)
	}
}
