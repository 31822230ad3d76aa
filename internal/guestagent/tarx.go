package guestagent

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

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/tarcopy"
)

// extractTar writes the archive r under root. os.Root refuses at the system
// call level anything that would resolve outside it; tarcopy's checks turn
// such entries into clear errors first. Ownership is kept when chown is set.
func extractTar(root *os.Root, r io.Reader, chown bool) (agentproto.CopyResult, error) {
	var res agentproto.CopyResult
	var dirs []*tar.Header
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, errdefs.Invalid("reading tar stream: %v", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := tarcopy.CleanName(hdr.Name)
		if err != nil {
			return res, err
		}
		name = rootName(name)
		n, err := extractEntry(root, name, hdr, tr)
		if err != nil {
			return res, err
		}
		res.Entries++
		res.Bytes += n
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, hdr)
			continue
		}
		if err := applyMeta(root, name, hdr, chown); err != nil {
			return res, err
		}
	}
	// Directory modes last, so a read-only directory could still be filled.
	for i := len(dirs) - 1; i >= 0; i-- {
		name, _ := tarcopy.CleanName(dirs[i].Name)
		if err := applyMeta(root, rootName(name), dirs[i], chown); err != nil {
			return res, err
		}
	}
	return res, nil
}

func rootName(name string) string {
	if name == "" {
		return "."
	}
	return name
}

func extractEntry(root *os.Root, name string, hdr *tar.Header, r io.Reader) (int64, error) {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return 0, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return 0, fmt.Errorf("creating %s: %w", name, err)
		}
		return 0, nil
	case tar.TypeReg:
		return writeEntryFile(root, name, r)
	case tar.TypeSymlink:
		if err := tarcopy.CheckLink(name, hdr.Linkname); err != nil {
			return 0, fmt.Errorf("refusing symlink %q -> %q: %w", hdr.Name, hdr.Linkname, err)
		}
		removeExisting(root, name)
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return 0, fmt.Errorf("creating symlink %s: %w", name, err)
		}
	case tar.TypeLink:
		target, err := tarcopy.CleanName(hdr.Linkname)
		if err != nil || target == "" {
			return 0, errdefs.Invalid("refusing hard link %q -> %q: target outside the target directory", hdr.Name, hdr.Linkname)
		}
		removeExisting(root, name)
		if err := root.Link(target, name); err != nil {
			return 0, fmt.Errorf("creating hard link %s: %w", name, err)
		}
	default:
		return 0, errdefs.Unsupported("tar entry %q has type %q, which copy does not support", hdr.Name, hdr.Typeflag)
	}
	return 0, nil
}

// writeEntryFile writes a regular file under a temporary name beside name
// and renames it into place once complete, so a copy that stops halfway
// (host gone, stream broken) leaves the old file or none, never a partial
// one. The rename replaces a symlink at name rather than writing through it.
func writeEntryFile(root *os.Root, name string, r io.Reader) (int64, error) {
	tmp, f, err := createTemp(root, path.Dir(name))
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", name, err)
	}
	n, err := io.CopyBuffer(f, r, make([]byte, 256<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return n, fmt.Errorf("writing %s: %w", name, err)
	}
	return n, nil
}

// tempPrefix starts the names of files copy_in is still writing.
const tempPrefix = ".banger-copy-"

// createTemp creates a new empty file in dir (a name under root).
func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	for {
		name := path.Join(dir, tempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return name, f, err
		}
	}
}

// removeExisting unlinks a non-directory at name so a new entry replaces it
// instead of being written through it.
func removeExisting(root *os.Root, name string) {
	if fi, err := root.Lstat(name); err == nil && !fi.IsDir() {
		root.Remove(name)
	}
}

func applyMeta(root *os.Root, name string, hdr *tar.Header, chown bool) error {
	if hdr.Typeflag == tar.TypeLink {
		return nil // the inode's metadata came with its first name
	}
	if hdr.Typeflag == tar.TypeSymlink {
		if chown {
			root.Lchown(name, hdr.Uid, hdr.Gid)
		}
		return nil
	}
	if chown {
		if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("setting owner of %s: %w", name, err)
		}
	}
	// After chown, which clears set-id bits.
	if err := root.Chmod(name, tarMode(hdr.Mode)); err != nil {
		return fmt.Errorf("setting mode of %s: %w", name, err)
	}
	if !hdr.ModTime.IsZero() {
		root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

func tarMode(m int64) os.FileMode {
	mode := os.FileMode(m) & os.ModePerm
	if m&04000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&02000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&01000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
