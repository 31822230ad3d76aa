package kernel

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/api/errdefs"
)

func TestUntar(t *testing.T) {
	for _, gz := range []bool{false, true} {
		root := t.TempDir()
		data := makeTar(t, gz,
			tarEntry{name: "./", typ: tar.TypeDir},
			tarEntry{name: "6.1.0/kernel/a.ko", typ: tar.TypeReg, body: "a"},
			tarEntry{name: "6.1.0/kernel/", typ: tar.TypeDir}, // after its child: fine
			tarEntry{name: "6.1.0/kernel/b.ko", typ: tar.TypeSymlink, linkname: "./a.ko"},
			tarEntry{name: "6.1.0/extra/c.ko", typ: tar.TypeSymlink, linkname: "../kernel/a.ko"},
		)
		if err := untar(bytes.NewReader(data), root); err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		want := []string{"6.1.0", "6.1.0/extra", "6.1.0/extra/c.ko", "6.1.0/kernel", "6.1.0/kernel/a.ko", "6.1.0/kernel/b.ko"}
		if got := listTree(t, root); !slices.Equal(got, want) {
			t.Errorf("gzip %v: got %q, want %q", gz, got, want)
		}
		if b, err := os.ReadFile(filepath.Join(root, "6.1.0/extra/c.ko")); string(b) != "a" {
			t.Errorf("gzip %v: reading through symlink: %q, %v", gz, b, err)
		}
	}
}

func TestUntarRefusesHostileEntries(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dot-dot", []tarEntry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, `name contains ".."`},
		{"dot-dot inside", []tarEntry{{name: "a/../../evil", typ: tar.TypeReg, body: "x"}}, `name contains ".."`},
		{"absolute", []tarEntry{{name: "/tmp/evil", typ: tar.TypeReg, body: "x"}}, "absolute"},
		{"symlink up and out", []tarEntry{{name: "a/link", typ: tar.TypeSymlink, linkname: "../../evil"}}, "leaves the archive"},
		{"absolute symlink", []tarEntry{{name: "link", typ: tar.TypeSymlink, linkname: "/etc"}}, "is absolute"},
		{"symlink through symlink", []tarEntry{
			{name: "s", typ: tar.TypeSymlink, linkname: "."},
			{name: "link", typ: tar.TypeSymlink, linkname: "s/.."},
		}, `".." after a directory name`},
		{"write through symlink", []tarEntry{
			{name: "dir", typ: tar.TypeSymlink, linkname: "sub"},
			{name: "sub/", typ: tar.TypeDir},
			{name: "dir/evil", typ: tar.TypeReg, body: "x"},
		}, "is not a directory"},
		{"replace symlink with file", []tarEntry{
			{name: "f", typ: tar.TypeSymlink, linkname: "g"},
			{name: "f", typ: tar.TypeReg, body: "x"},
		}, "duplicate entry"},
		{"hardlink escape", []tarEntry{{name: "h", typ: tar.TypeLink, linkname: "../../etc/passwd"}}, "hard links are not supported"},
		{"hardlink inside", []tarEntry{
			{name: "a", typ: tar.TypeReg, body: "x"},
			{name: "h", typ: tar.TypeLink, linkname: "a"},
		}, "hard links are not supported"},
		{"char device", []tarEntry{{name: "null", typ: tar.TypeChar}}, "character device is not allowed"},
		{"fifo", []tarEntry{{name: "fifo", typ: tar.TypeFifo}}, "fifo is not allowed"},
		{"block device", []tarEntry{{name: "sda", typ: tar.TypeBlock}}, "block device is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := t.TempDir()
			root := filepath.Join(outer, "a", "root") // room for ../.. to land inside outer
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			err := untar(bytes.NewReader(makeTar(t, true, tt.entries...)), root)
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want invalid error containing %q", err, tt.want)
			}
			for _, p := range listTree(t, outer) {
				if p != "a" && p != "a/root" && !strings.HasPrefix(p, "a/root/") {
					t.Errorf("written outside root: %s", p)
				}
			}
		})
	}
}

// A modules tarball cannot unpack to more than the bound, however well it
// compresses, nor hold more entries than a modules tree has.
func TestUntarIsBounded(t *testing.T) {
	oldBytes, oldEntries := maxModulesBytes, maxModulesEntries
	t.Cleanup(func() { maxModulesBytes, maxModulesEntries = oldBytes, oldEntries })
	maxModulesBytes, maxModulesEntries = 4096, 5
	big := strings.Repeat("\x00", 3000)
	bomb := makeTar(t, true, tarEntry{name: "a.ko", typ: tar.TypeReg, body: big}, tarEntry{name: "b.ko", typ: tar.TypeReg, body: big})
	if err := untar(bytes.NewReader(bomb), t.TempDir()); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "more than 4096 bytes") {
		t.Errorf("unpacking past the byte bound: %v", err)
	}
	var many []tarEntry
	for i := range 6 {
		many = append(many, tarEntry{name: fmt.Sprintf("%d.ko", i), typ: tar.TypeReg, body: "m"})
	}
	if err := untar(bytes.NewReader(makeTar(t, false, many...)), t.TempDir()); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "more than 5 entries") {
		t.Errorf("unpacking past the entry bound: %v", err)
	}
	if err := untar(bytes.NewReader(makeTar(t, false, many[:5]...)), t.TempDir()); err != nil {
		t.Errorf("unpacking within the bounds: %v", err)
	}
}
