package tarcopy

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api/errdefs"
)

// hostile builds an archive from entries, as a guest could send it.
func hostile(t *testing.T, hdrs ...*tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len("pwned"))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("pwned"))
		}
	}
	tw.Close()
	return &buf
}

// outside lists what exists in dir other than dst.
func outside(t *testing.T, dir, dst string) []string {
	t.Helper()
	var extra []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if p == dir {
			return nil
		}
		if p == dst || strings.HasPrefix(p, dst+"/") {
			return nil
		}
		extra = append(extra, p)
		return nil
	})
	return extra
}

func TestExtractConfinesHostileArchives(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
	sym := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
	}
	tests := []struct {
		name string
		hdrs []*tar.Header
		kind error
	}{
		{"dotdot", []*tar.Header{reg("../escape")}, errdefs.ErrInvalid},
		{"dotdot-deep", []*tar.Header{reg("a/../../escape")}, errdefs.ErrInvalid},
		{"absolute", []*tar.Header{reg("/tmp/escape")}, errdefs.ErrInvalid},
		{"symlink-to-etc", []*tar.Header{sym("etc", "/etc"), reg("etc/passwd")}, errdefs.ErrInvalid},
		{"symlink-up", []*tar.Header{sym("up", "../.."), reg("up/escape")}, errdefs.ErrInvalid},
		{"symlink-then-write-through", []*tar.Header{{Name: "d/", Typeflag: tar.TypeDir}, sym("d/l", "."), reg("d/l/x")}, errdefs.ErrInvalid},
		{"hardlink-out", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../escape"}}, errdefs.ErrInvalid},
		{"hardlink-abs", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, errdefs.ErrInvalid},
		{"device", []*tar.Header{{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, errdefs.ErrUnsupported},
		{"fifo", []*tar.Header{{Name: "p", Typeflag: tar.TypeFifo}}, errdefs.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			os.Mkdir(dst, 0o755)
			root, err := os.OpenRoot(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			_, err = Extract(root, hostile(t, tt.hdrs...), Options{})
			if !errors.Is(err, tt.kind) {
				t.Errorf("Extract = %v; want a %v error", err, tt.kind)
			}
			if extra := outside(t, base, dst); len(extra) > 0 {
				t.Errorf("written outside the destination: %v", extra)
			}
		})
	}
}

func TestExtractLimits(t *testing.T) {
	dst := t.TempDir()
	root, _ := os.OpenRoot(dst)
	defer root.Close()
	hdrs := []*tar.Header{{Name: "a", Typeflag: tar.TypeReg}, {Name: "b", Typeflag: tar.TypeReg}, {Name: "c", Typeflag: tar.TypeReg}}
	if _, err := Extract(root, hostile(t, hdrs...), Options{MaxEntries: 2}); err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Errorf("3 entries with a limit of 2: %v", err)
	}
	if _, err := Extract(root, hostile(t, &tar.Header{Name: "big", Typeflag: tar.TypeReg}), Options{MaxBytes: 3}); err == nil || !strings.Contains(err.Error(), "over 3 bytes") {
		t.Errorf("5 bytes with a limit of 3: %v", err)
	}
}

func TestWriteExtractRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(src, "sub"), 0o750)
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "secret"), []byte("s"), 0o600)
	os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(src, "suid"), 0o4755)
	os.Symlink("sub/secret", filepath.Join(src, "link"))
	os.Link(filepath.Join(src, "run.sh"), filepath.Join(src, "hard"))

	var buf bytes.Buffer
	wres, err := Write(src, "renamed", &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	root, _ := os.OpenRoot(dst)
	defer root.Close()
	xres, err := Extract(root, &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if wres.Entries != xres.Entries || wres.Bytes != xres.Bytes {
		t.Errorf("written %+v, extracted %+v", wres, xres)
	}
	out := filepath.Join(dst, "renamed")
	modes := map[string]os.FileMode{"run.sh": 0o755, "sub/secret": 0o600, "sub": 0o750 | os.ModeDir, "suid": 0o755}
	for name, want := range modes {
		fi, err := os.Lstat(filepath.Join(out, name))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(out, "link")); err != nil || target != "sub/secret" {
		t.Errorf("link = %q, %v; want a symlink to sub/secret", target, err)
	}
	a, _ := os.Stat(filepath.Join(out, "run.sh"))
	b, _ := os.Stat(filepath.Join(out, "hard"))
	if !os.SameFile(a, b) {
		t.Error("the hard link came back as a separate file")
	}
}
