package kernel

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"banger/api/errdefs"
	"banger/internal/fsutil"
)

// untar unpacks a tar or gzip-compressed tar into root, an existing empty
// directory. Modules tarballs come from the network, so every entry must
// stay inside root: no "..", no absolute names, no symlink whose target
// leaves root, and only regular files, directories and symlinks. Nothing
// is ever written through a symlink, because every parent of an entry must
// be a real directory (checked with Lstat) and files are created with
// O_EXCL. Files and directories are fsynced before untar returns.
func untar(r io.Reader, root string) error {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return errdefs.Invalid("reading modules tarball: %v", err)
		}
		defer zr.Close()
		src = zr
	}
	x := extractor{root: root, dirs: []string{root}}
	tr := tar.NewReader(src)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.Invalid("reading modules tarball: %v", err)
		}
		if entries >= maxModulesEntries {
			return errdefs.Invalid("modules tarball has more than %d entries; a kernel's modules tree has tens of thousands at most", maxModulesEntries)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > maxModulesBytes-x.written {
			return errdefs.Invalid("modules tarball unpacks to more than %d bytes (entry %q); a kernel's modules tree is far smaller", maxModulesBytes, hdr.Name)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			x.written += hdr.Size
		}
	}
	return x.syncDirs()
}

// Bounds on what a modules tarball may unpack to: it comes from the
// network, and a compressed archive of a few megabytes could otherwise
// fill the disk (the catalog's sha256 comes from the same catalog).
// (Variables so that tests can lower them.)
var (
	maxModulesBytes   int64 = MaxFileSize
	maxModulesEntries       = 200000
)

type extractor struct {
	root    string
	dirs    []string // directories created, parents before children
	written int64    // bytes of regular files unpacked
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // pax metadata for the whole archive (git archive writes one)
	}
	rel, err := entryPath(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil // the archive's own top directory, "./"
	}
	if err := x.mkParents(rel); err != nil {
		return errdefs.Invalid("modules tarball entry %q: %v", hdr.Name, err)
	}
	target := filepath.Join(x.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(target)
	switch {
	case err == nil && fi.IsDir() && hdr.Typeflag == tar.TypeDir:
		return nil // implied by an earlier entry
	case err == nil:
		return errdefs.Invalid("modules tarball entry %q: duplicate entry", hdr.Name)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
	}
	return x.create(hdr, rel, target, body)
}

func (x *extractor) create(hdr *tar.Header, rel, target string, body io.Reader) error {
	perm := fs.FileMode(hdr.Mode) & 0o755 // no setuid, sticky or group/world write
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, perm|0o700); err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
		x.dirs = append(x.dirs, target)
		return nil
	case tar.TypeReg:
		return writeFile(target, perm|0o600, body)
	case tar.TypeSymlink:
		if err := checkLink(rel, hdr.Linkname); err != nil {
			return errdefs.Invalid("modules tarball entry %q: symlink to %q %v", hdr.Name, hdr.Linkname, err)
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
		return nil
	case tar.TypeLink:
		return errdefs.Invalid("modules tarball entry %q: hard links are not supported; pack with tar --hard-dereference", hdr.Name)
	}
	return errdefs.Invalid("modules tarball entry %q: %s is not allowed; only files, directories and symlinks are", hdr.Name, typeName(hdr.Typeflag))
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("entry type %q", t)
}

func writeFile(target string, perm fs.FileMode, body io.Reader) error {
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	_, err = io.Copy(f, body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", target, err)
	}
	return nil
}

// entryPath turns a tar name into a clean relative slash path. ".." is
// refused anywhere, even where it would cancel out, so names never depend
// on what earlier entries made of their parents.
func entryPath(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", errdefs.Invalid("modules tarball entry %q: absolute or empty name", name)
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", errdefs.Invalid("modules tarball entry %q: name contains \"..\"", name)
	}
	return path.Clean(name), nil
}

// mkParents makes sure every parent of rel is a real directory inside root,
// creating missing ones. A symlink as parent is refused: writing through it
// could land anywhere.
func (x *extractor) mkParents(rel string) error {
	dir := x.root
	parents := strings.Split(path.Dir(rel), "/")
	if parents[0] == "." {
		return nil
	}
	for _, p := range parents {
		dir = filepath.Join(dir, p)
		fi, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			x.dirs = append(x.dirs, dir)
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("parent %q is not a directory", p)
		}
	}
	return nil
}

// checkLink refuses symlink targets that can resolve outside root. Leading
// ".." may climb only as high as root; a ".." after a normal component is
// refused because that component may itself be a symlink (s -> . then
// s/.. is root's parent), which a lexical check cannot see.
func checkLink(rel, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return errors.New("is absolute or empty")
	}
	depth := strings.Count(path.Dir(rel), "/") + 1 // directories above the link
	if path.Dir(rel) == "." {
		depth = 0
	}
	descended := false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if descended {
				return errors.New("uses \"..\" after a directory name")
			}
			if depth--; depth < 0 {
				return errors.New("leaves the archive")
			}
		default:
			descended = true
		}
	}
	return nil
}

// syncDirs makes the directory entries durable, children first.
func (x *extractor) syncDirs() error {
	for _, d := range slices.Backward(x.dirs) {
		if err := fsutil.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
