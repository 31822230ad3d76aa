package imagepull

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// ExtraFile is a file added to the root filesystem on top of the image,
// in the same pass that writes the image: the guest agent binary, its
// systemd unit, the symlink that enables it. It replaces whatever the
// image has at Path, unless that is a directory and the extra file is
// not. Missing parent directories are created root:root 0755; a parent
// that is a symlink in the image is followed inside the image.
type ExtraFile struct {
	Path string      // absolute path in the guest, e.g. /usr/local/bin/banger-vsock-agent
	Mode fs.FileMode // permission bits, setuid/setgid/sticky, and fs.ModeDir or fs.ModeSymlink for those types
	UID  int
	GID  int
	// Linkname is the target of a symlink (Mode has fs.ModeSymlink).
	Linkname string
	// Size and Content are a regular file's data; Content must yield
	// exactly Size bytes.
	Size    int64
	Content io.Reader
	ModTime time.Time // zero means now
}

// header checks f and describes it as a tar entry.
func (f *ExtraFile) header() (*tar.Header, string, error) {
	if !strings.HasPrefix(f.Path, "/") {
		return nil, "", fmt.Errorf("extra file %q: the path must be absolute", f.Path)
	}
	name, err := cleanName(f.Path)
	if err != nil || name == "" || path.Clean(f.Path) != f.Path {
		return nil, "", fmt.Errorf("extra file %q: the path must be clean and below /", f.Path)
	}
	mt := f.ModTime
	if mt.IsZero() {
		mt = time.Now()
	}
	h := &tar.Header{Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, ModTime: mt}
	if f.Mode&fs.ModeSetuid != 0 {
		h.Mode |= 0o4000
	}
	if f.Mode&fs.ModeSetgid != 0 {
		h.Mode |= 0o2000
	}
	if f.Mode&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	switch {
	case f.Mode.IsDir():
		h.Typeflag = tar.TypeDir
	case f.Mode&fs.ModeSymlink != 0:
		if f.Linkname == "" || len(f.Linkname) > maxLinkLen {
			return nil, "", fmt.Errorf("extra file %q: a symlink needs a target of 1 to %d bytes", f.Path, maxLinkLen)
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, f.Linkname
	case f.Mode.IsRegular():
		if f.Content == nil && f.Size != 0 || f.Size < 0 {
			return nil, "", fmt.Errorf("extra file %q: Content must yield Size (%d) bytes", f.Path, f.Size)
		}
		h.Typeflag, h.Size = tar.TypeReg, f.Size
	default:
		return nil, "", fmt.Errorf("extra file %q: only regular files, directories and symlinks can be added", f.Path)
	}
	return h, name, nil
}

// addExtra puts f into the tree as written by layer (one past the last
// image layer).
func (t *tree) addExtra(f *ExtraFile, layer, seq int) error {
	h, name, err := f.header()
	if err != nil {
		return err
	}
	d, err := t.dir(path.Dir(name), true, layer)
	if err != nil {
		return fmt.Errorf("extra file %s: %w", f.Path, err)
	}
	base := path.Base(name)
	old := d.kids[base]
	if h.Typeflag == tar.TypeDir {
		if old != nil && old.isDir() {
			old.hdr, old.layer = h, layer
			return nil
		}
		d.kids[base] = &node{name: base, parent: d, kids: map[string]*node{}, hdr: h, layer: layer}
		return nil
	}
	if old != nil && old.isDir() {
		return fmt.Errorf("extra file %s: the image has a directory there", f.Path)
	}
	d.kids[base] = &node{name: base, parent: d, layer: layer, ino: &inode{hdr: h, layer: layer, seq: seq, extra: f}}
	return nil
}
