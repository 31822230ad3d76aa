// Package tarcopy moves file trees as tar streams: Write archives a file
// or directory (the guest agent's copy_out, the host side of 'banger vm
// cp' into a guest), Extract unpacks one under a directory it never
// leaves (the host side of 'banger vm cp' out of a guest, where every
// byte of the archive is the guest's and so hostile).
package tarcopy

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"
)

// Result counts what a copy moved.
type Result struct {
	Entries int
	Bytes   int64 // regular file content
}

// Write archives src (a file or directory; symlinks are stored as
// symlinks, never followed) to w. Entries are named from name, or from
// src's base name when name is empty, as tar -C dir(src) base(src) does.
// Hard links are kept as links. onData, when set, is called with each
// chunk of file content written.
func Write(src, name string, w io.Writer, onData func(int64)) (Result, error) {
	var res Result
	src = filepath.Clean(src)
	base := name
	if base == "" {
		base = filepath.Base(src)
	}
	if base == "/" || base == "." {
		base = ""
	}
	tw := tar.NewWriter(w)
	seen := map[[2]uint64]string{}
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := path.Join(base, filepath.ToSlash(rel))
		if name == "." {
			return nil // archiving "/": entries are relative, there is no top entry
		}
		n, err := writeEntry(tw, p, name, d, seen, buf, onData)
		res.Entries++
		res.Bytes += n
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return res, fmt.Errorf("archiving %s: %w", src, err)
	}
	return res, nil
}

func writeEntry(tw *tar.Writer, p, name string, d fs.DirEntry, seen map[[2]uint64]string, buf []byte, onData func(int64)) (int64, error) {
	fi, err := d.Info()
	if err != nil {
		return 0, err
	}
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return 0, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return 0, err
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := seen[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			seen[key] = name
		}
	}
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return 0, nil
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var dst io.Writer = tw
	if onData != nil {
		dst = counting{tw, onData}
	}
	// Hide File.WriteTo so the large buffer is used.
	return io.CopyBuffer(dst, struct{ io.Reader }{f}, buf)
}

type counting struct {
	w      io.Writer
	onData func(int64)
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.onData(int64(n))
	return n, err
}
