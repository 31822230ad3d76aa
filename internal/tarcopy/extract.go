package tarcopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"

	"banger/api/errdefs"
)

// Options tune Extract. The zero value applies the default limits.
type Options struct {
	// Rename maps each entry's cleaned name ("" is the root itself) to
	// the name it gets under the root; an error refuses the entry. nil
	// keeps names.
	Rename func(name string) (string, error)
	// MaxEntries bounds the number of entries (DefaultMaxEntries when 0).
	MaxEntries int
	// MaxBytes bounds the file content written (DefaultMaxBytes when 0).
	MaxBytes int64
	// OnData, when set, is called with each chunk of file content written.
	OnData func(int64)
}

// Default limits of Extract: far above any honest tree a copy moves, low
// enough that a hostile archive cannot run forever or fill a disk past
// what a guest disk could hold.
const (
	DefaultMaxEntries = 4 << 20
	DefaultMaxBytes   = 1 << 40
	maxNameLen        = 4096
)

// Extract writes the archive r under root and nothing outside it, whatever
// r holds. It refuses (and stops at) absolute names, names with "..", a
// symlink whose target is absolute or leads out of root, a hard link to a
// name outside root, device nodes, FIFOs and other special files, and an
// entry below a parent that is not a real directory; os.Root refuses at
// the system call level anything that would still resolve outside root.
// No symlink is followed while writing: files are written under a
// temporary name and renamed into place, which replaces a symlink rather
// than writing through it. Permission bits and the sticky bit are kept,
// set-user-ID and set-group-ID bits dropped; ownership is not restored.
func Extract(root *os.Root, r io.Reader, opts Options) (Result, error) {
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	x := extractor{root: root, opts: opts}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.res, errdefs.Invalid("reading tar stream: %v", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if x.res.Entries >= opts.MaxEntries {
			return x.res, errdefs.Invalid("refusing tar stream: more than %d entries", opts.MaxEntries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.res, err
		}
		x.res.Entries++
	}
	// Directory modes last, so a read-only directory could still be filled.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := root.Chmod(d.name, fileMode(d.hdr.Mode)); err != nil {
			return x.res, fmt.Errorf("setting mode of %s: %w", d.name, err)
		}
		if !d.hdr.ModTime.IsZero() {
			root.Chtimes(d.name, d.hdr.ModTime, d.hdr.ModTime)
		}
	}
	return x.res, nil
}

type extractor struct {
	root *os.Root
	opts Options
	res  Result
	dirs []dirMeta
}

type dirMeta struct {
	name string
	hdr  *tar.Header
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if x.opts.Rename != nil {
		if name, err = x.opts.Rename(name); err != nil {
			return err
		}
	}
	if name == "" {
		name = "."
	}
	if err := x.parents(name, hdr.Name); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := x.root.Lstat(name)
		switch {
		case err == nil && !fi.IsDir():
			return errdefs.Conflict("refusing directory %q: %s exists and is not a directory", hdr.Name, name)
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(name, 0o700); err != nil {
				return fmt.Errorf("creating %s: %w", name, err)
			}
		case err != nil:
			return err
		}
		x.dirs = append(x.dirs, dirMeta{name, hdr})
		return nil
	case tar.TypeReg:
		if name == "." {
			return errdefs.Invalid("refusing file %q: it would replace the target directory", hdr.Name)
		}
		if hdr.Size > x.opts.MaxBytes-x.res.Bytes {
			return errdefs.Invalid("refusing tar stream: file content over %d bytes", x.opts.MaxBytes)
		}
		return x.file(name, hdr, body)
	case tar.TypeSymlink:
		if err := CheckLink(name, hdr.Linkname); err != nil {
			return fmt.Errorf("refusing symlink %q -> %q: %w", hdr.Name, hdr.Linkname, err)
		}
		if err := x.replaceable(name, hdr.Name); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, name); err != nil {
			return fmt.Errorf("creating symlink %s: %w", name, err)
		}
		return nil
	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err == nil && x.opts.Rename != nil {
			target, err = x.opts.Rename(target)
		}
		if err != nil || target == "" {
			return errdefs.Invalid("refusing hard link %q -> %q: its target is outside the destination", hdr.Name, hdr.Linkname)
		}
		if fi, err := x.root.Lstat(target); err != nil || !fi.Mode().IsRegular() {
			return errdefs.Invalid("refusing hard link %q -> %q: the target is not a file extracted before it", hdr.Name, hdr.Linkname)
		}
		if err := x.replaceable(name, hdr.Name); err != nil {
			return err
		}
		if err := x.root.Link(target, name); err != nil {
			return fmt.Errorf("creating hard link %s: %w", name, err)
		}
		return nil
	}
	return errdefs.Unsupported("refusing %q: tar entry type %q (device, FIFO or other special file) is not copied", hdr.Name, hdr.Typeflag)
}

// parents creates the missing parents of name and checks that those
// present are real directories, never symlinks.
func (x *extractor) parents(name, orig string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := x.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := x.root.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", p, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return errdefs.Invalid("refusing %q: %s is not a directory (a symlink is never written through)", orig, p)
		}
	}
	return nil
}

// replaceable removes a non-directory at name so a new entry takes its
// place instead of being written through it.
func (x *extractor) replaceable(name, orig string) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errdefs.Conflict("refusing %q: %s is a directory", orig, name)
	}
	return x.root.Remove(name)
}

// file writes a regular file under a temporary name beside name and
// renames it into place once complete.
func (x *extractor) file(name string, hdr *tar.Header, body io.Reader) error {
	if fi, err := x.root.Lstat(name); err == nil && fi.IsDir() {
		return errdefs.Conflict("refusing file %q: %s is a directory", hdr.Name, name)
	}
	tmp, f, err := createTemp(x.root, path.Dir(name))
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	var w io.Writer = f
	if x.opts.OnData != nil {
		w = counting{f, x.opts.OnData}
	}
	n, err := io.CopyBuffer(w, struct{ io.Reader }{body}, make([]byte, 256<<10))
	x.res.Bytes += n
	if err == nil {
		err = f.Chmod(fileMode(hdr.Mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = x.root.Rename(tmp, name)
	}
	if err != nil {
		x.root.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if !hdr.ModTime.IsZero() {
		x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

// TempPrefix starts the names of files Extract is still writing.
const TempPrefix = ".banger-copy-"

func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	for {
		name := path.Join(dir, TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return name, f, err
		}
	}
}

// CleanName cleans a tar entry name and refuses names that would leave
// the root. "" means the root itself.
func CleanName(name string) (string, error) {
	if len(name) > maxNameLen {
		return "", errdefs.Invalid("refusing tar entry of a %d byte name", len(name))
	}
	if strings.HasPrefix(name, "/") {
		return "", errdefs.Invalid("refusing tar entry %q: absolute path", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", errdefs.Invalid("refusing tar entry %q: NUL in its name", name)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", errdefs.Invalid("refusing tar entry %q: \"..\" would leave the destination", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// CheckLink refuses a symlink target that is absolute or, read from
// the link's directory, leads outside the root.
func CheckLink(name, target string) error {
	if target == "" || path.IsAbs(target) {
		return errdefs.Invalid("an absolute target could point anywhere on this host")
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return errdefs.Invalid("its target leads outside the destination")
	}
	return nil
}

// fileMode keeps permission bits and the sticky bit; set-id bits from a
// guest have no business on the host.
func fileMode(m int64) os.FileMode {
	mode := os.FileMode(m) & os.ModePerm
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
