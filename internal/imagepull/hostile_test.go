package imagepull

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/api/errdefs"
)

// Hostile layers are rejected with a clear error or neutralised so that
// nothing escapes the image root, and nothing is ever written outside
// the build directory.
func TestHostileLayers(t *testing.T) {
	requireE2fs(t)
	reg := newRegistry(t, nil)
	p := newPuller(t)
	// A unique name per run, checked on the host after every case.
	canary := fmt.Sprintf("banger-canary-%d", os.Getpid())
	hostCanary := filepath.Join(os.TempDir(), canary)
	os.Remove(hostCanary)

	tests := []struct {
		name    string
		layers  [][]ent
		wantErr string                            // substring; "" means the pull succeeds
		check   func(t *testing.T, rootfs string) // on success
	}{
		{name: "dotdot escape", layers: [][]ent{{file("../../"+canary, "x")}}, wantErr: "escapes the image root"},
		{name: "dotdot inside a path", layers: [][]ent{{dir("a"), file("a/../../../"+canary, "x")}}, wantErr: "escapes the image root"},
		{name: "harmless dotdot", layers: [][]ent{{dir("a"), file("a/../b", "x")}}, check: func(t *testing.T, fs string) {
			if got := cat(t, fs, "/b"); got != "x" {
				t.Errorf("/b = %q", got)
			}
		}},
		{name: "absolute name is relative to the root", layers: [][]ent{{file("/tmp/"+canary, "abs")}}, check: func(t *testing.T, fs string) {
			if got := cat(t, fs, "/tmp/"+canary); got != "abs" {
				t.Errorf("/tmp/%s = %q", canary, got)
			}
		}},
		{name: "symlink parent escaping the root", layers: [][]ent{
			{symlink("evil", "../../../../../"+strings.TrimPrefix(os.TempDir(), "/"))},
			{file("evil/"+canary, "pwned")},
		}, check: func(t *testing.T, fs string) {
			// Followed inside the image: lands in the image's own tmp.
			if got := cat(t, fs, os.TempDir()+"/"+canary); got != "pwned" {
				t.Errorf("%s/%s in the image = %q", os.TempDir(), canary, got)
			}
			in, _ := stat(t, fs, "/evil")
			if want := strings.TrimPrefix(os.TempDir(), "/"); in.fastLinkTo != want {
				t.Errorf("/evil -> %q, want the escaping target rewritten to %q", in.fastLinkTo, want)
			}
		}},
		{name: "absolute symlink parent", layers: [][]ent{
			{dir("etc"), file("etc/passwd", "image passwd"), symlink("hostetc", "/etc")},
			{file("hostetc/passwd", "replaced in the image")},
		}, check: func(t *testing.T, fs string) {
			if got := cat(t, fs, "/etc/passwd"); got != "replaced in the image" {
				t.Errorf("/etc/passwd = %q", got)
			}
		}},
		{name: "symlink loop as a parent", layers: [][]ent{{symlink("a", "b"), symlink("b", "a"), file("a/x", "x")}}, wantErr: "too many levels of symbolic links"},
		{name: "hardlink escaping the root", layers: [][]ent{{hardlink("passwd", "../../../../etc/passwd")}}, wantErr: "outside the image root"},
		{name: "absolute hardlink target stays inside", layers: [][]ent{{dir("etc"), file("etc/hosts", "h"), hardlink("h2", "/etc/hosts")}}, check: func(t *testing.T, fs string) {
			a, _ := stat(t, fs, "/etc/hosts")
			b, _ := stat(t, fs, "/h2")
			if a.inode != b.inode || a.links != "2" {
				t.Errorf("/h2 inode %s, /etc/hosts inode %s links %s: want one inode, 2 links", b.inode, a.inode, a.links)
			}
		}},
		{name: "hardlink to a missing file", layers: [][]ent{{hardlink("l", "nowhere")}}, wantErr: "missing or a directory"},
		{name: "hardlink to a directory", layers: [][]ent{{dir("d"), hardlink("l", "d")}}, wantErr: "missing or a directory"},
		{name: "hardlink through a symlinked parent", layers: [][]ent{{symlink("up", "/"), hardlink("l", "up/../../x")}}, wantErr: "outside the image root"},
		{name: "whiteout escaping the root", layers: [][]ent{{file("a", "x")}, {file("../.wh.a", "")}}, wantErr: "escapes the image root"},
		{name: "whiteout of ..", layers: [][]ent{{dir("d")}, {file("d/.wh..", "")}}, wantErr: "names no file"},
		{name: "whiteout through a symlink stays inside", layers: [][]ent{
			{dir("etc"), file("etc/passwd", "p"), symlink("s", "../../etc")},
			{file("s/.wh.passwd", "")},
		}, check: func(t *testing.T, fs string) {
			if _, ok := stat(t, fs, "/etc/passwd"); ok {
				t.Error("/etc/passwd survived a whiteout through s -> ../../etc")
			}
		}},
		{name: "duplicate entries: the last wins", layers: [][]ent{{file("a", "first"), file("a", "second"), dir("d"), ent{name: "d", typ: tar.TypeDir, mode: 0o700}}}, check: func(t *testing.T, fs string) {
			if got := cat(t, fs, "/a"); got != "second" {
				t.Errorf("/a = %q", got)
			}
			if in, _ := stat(t, fs, "/d"); in.mode != "0700" {
				t.Errorf("/d mode %s", in.mode)
			}
		}},
		{name: "duplicate: a file replaces a directory", layers: [][]ent{{dir("d"), file("d/x", "x"), file("d", "now a file")}}, check: func(t *testing.T, fs string) {
			if got := cat(t, fs, "/d"); got != "now a file" {
				t.Errorf("/d = %q", got)
			}
		}},
		{name: "entry below a regular file", layers: [][]ent{{file("f", "x"), file("f/y", "y")}}, wantErr: "not a directory"},
		{name: "root replaced by a file", layers: [][]ent{{file(".", "x")}}, wantErr: "replaces the root directory"},
		{name: "lost+found file is dropped", layers: [][]ent{{file("lost+found", "x"), file("ok", "ok")}}, check: func(t *testing.T, fs string) {
			if in, _ := stat(t, fs, "/lost+found"); in.typ != "directory" {
				t.Errorf("/lost+found is %s", in.typ)
			}
		}},
		{name: "device nodes stay inodes", layers: [][]ent{{
			ent{name: "sda", typ: tar.TypeBlock, mode: 0o666, major: 8, minor: 0},
			ent{name: "mem", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 1},
		}}, check: func(t *testing.T, fs string) {
			if in, _ := stat(t, fs, "/mem"); in.typ != "character special" {
				t.Errorf("/mem is %q", in.typ)
			}
		}},
		{name: "oversized xattrs", layers: [][]ent{{ent{name: "x", mode: 0o644, xattrs: map[string]string{"user.big": strings.Repeat("x", 5000)}}}}, wantErr: "extended attributes take"},
		{name: "overlong symlink", layers: [][]ent{{symlink("l", strings.Repeat("a/", 2100))}}, wantErr: "overlong target"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ls []v1.Layer
			for _, es := range tt.layers {
				ls = append(ls, layerOf(t, es...))
			}
			ref := reg.Push(t, fmt.Sprintf("hostile/c%d:latest", i), imageOf(t, ls...))
			dir := t.TempDir()
			_, res, err := pullInto(t, p, ref, BuildOptions{Dir: dir})
			if _, serr := os.Lstat(hostCanary); serr == nil {
				t.Fatalf("%s was created on the host", hostCanary)
			}
			left, _ := os.ReadDir(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("pull error = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error kind = %s, want invalid", errdefs.KindOf(err))
				}
				if len(left) != 0 {
					t.Errorf("failed build left %v in its directory", names(left))
				}
				return
			}
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if len(left) != 1 || left[0].Name() != RootfsName {
				t.Errorf("build directory holds %v, want only %s", names(left), RootfsName)
			}
			fsckClean(t, res.Path)
			tt.check(t, res.Path)
		})
	}
}

func names(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// A layer whose header claims more data than it holds, and a layer that
// unpacks to more than the disk budget, fail with a clear error.
func TestAbsurdSizes(t *testing.T) {
	requireE2fs(t)
	t.Run("truncated data", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 10 << 30, Mode: 0o644})
		tw.Write([]byte("only this"))
		_, err := buildLayers(t, BuildOptions{}, buf.Bytes())
		if err == nil || !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("err = %v, want an invalid-layer error", err)
		}
	})
	t.Run("budget", func(t *testing.T) {
		data := tarOf(t, file("a", strings.Repeat("z", 3<<20)))
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		rc, _ := l.Compressed()
		gz, _ := io.ReadAll(rc)
		path := filepath.Join(t.TempDir(), "bomb.tar.gz")
		os.WriteFile(path, gz, 0o644)
		_, err := scanLayer(context.Background(), Layer{Digest: "sha256:bomb", Path: path}, filepath.Join(t.TempDir(), "spool"), newBudget(1<<20, "/build"), nil)
		if err == nil || !strings.Contains(err.Error(), "unpack to more than 1.0 MiB, the free disk space in /build") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		l := layerOf(t, file("a", strings.Repeat("q", 1<<20)), file("b", "b"))
		rc, _ := l.Compressed()
		gz, _ := io.ReadAll(rc)
		gz[len(gz)/2] ^= 0xff
		_, err := buildLayers(t, BuildOptions{}, gz[:len(gz)-100])
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("err = %v, want an invalid, corrupt layer", err)
		}
	})
	t.Run("size too small", func(t *testing.T) {
		_, err := buildLayers(t, BuildOptions{Size: 8 << 20}, tarOf(t, file("a", strings.Repeat("z", 6<<20))))
		if err == nil || !strings.Contains(err.Error(), "--size 8.0 MiB is too small: the image needs at least") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("size beyond the disk", func(t *testing.T) {
		_, err := buildLayers(t, BuildOptions{Size: 15 << 40}, tarOf(t, file("a", "z")))
		if err == nil || !strings.Contains(err.Error(), "free in") {
			t.Fatalf("err = %v", err)
		}
	})
}
