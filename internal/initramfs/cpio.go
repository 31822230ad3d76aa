// Package initramfs builds the small initramfs banger boots stock distro
// kernels with: it loads the virtio (and other) modules the kernel has as
// modules, then switches to the real root on /dev/vda.
//
// Debian's kernels build virtio, virtio-mmio, virtio-blk and virtio-net
// as modules, so without this step they cannot find their own root disk.
package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Entry is one file of the archive.
type Entry struct {
	Path string      // relative, no leading slash: "bin/busybox"
	Mode fs.FileMode // type bits and permissions
	Data []byte      // regular files
	Link string      // symlink target
}

// newc header field order after the magic; every field is 8 hex digits.
const newcMagic = "070701"

// WriteCPIO writes entries as a newc ("SVR4 with no CRC") archive, the
// format the kernel unpacks, with the trailer. Owners are root.
func WriteCPIO(w io.Writer, entries []Entry) error {
	ino := uint32(1)
	for _, e := range entries {
		data := e.Data
		if e.Mode&fs.ModeSymlink != 0 {
			data = []byte(e.Link)
		}
		if err := writeEntry(w, strings.TrimPrefix(e.Path, "/"), unixMode(e.Mode), ino, data); err != nil {
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
		ino++
	}
	return writeEntry(w, "TRAILER!!!", 0, 0, nil)
}

func writeEntry(w io.Writer, name string, mode, ino uint32, data []byte) error {
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		newcMagic, ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(data)%4)%4))
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// unixMode converts Go's mode bits to the S_IF* encoding cpio stores.
func unixMode(m fs.FileMode) uint32 {
	perm := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	switch {
	case m.IsDir():
		return 0o040000 | perm
	case m&fs.ModeSymlink != 0:
		return 0o120000 | perm
	default:
		return 0o100000 | perm
	}
}
