package workspace

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

// Link is a symlink the tar stream cannot carry because its target is
// absolute or leaves the tree (the guest refuses such entries in copies);
// FinalizeScript creates it instead.
type Link struct {
	Name   string // slash path inside the tree
	Target string
}

// escapes reports whether a symlink at name pointing to target resolves
// outside the tree.
func escapes(name, target string) bool {
	if path.IsAbs(target) {
		return true
	}
	r := path.Join(path.Dir(name), target)
	return r == ".." || strings.HasPrefix(r, "../")
}

// splitLinks separates the symlinks that escape the tree.
func splitLinks(entries []entry) ([]entry, []Link) {
	var keep []entry
	var links []Link
	for _, e := range entries {
		if e.link != "" && escapes(e.name, e.link) {
			links = append(links, Link{Name: e.name, Target: e.link})
			continue
		}
		keep = append(keep, e)
	}
	return keep, links
}

// tarWriter writes entries as a tar stream owned by root, with modes and
// mtimes (to the second) kept. onData, when set, gets the file bytes as
// they go.
type tarWriter struct {
	tw     *tar.Writer
	buf    []byte
	onData func(int64)
}

func newTarWriter(w io.Writer, onData func(int64)) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), buf: make([]byte, 256<<10), onData: onData}
}

func (t *tarWriter) write(entries []entry) error {
	for _, e := range entries {
		hdr := header(e)
		if err := t.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing tar header of %s: %w", e.name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if _, err := copyFile(t.tw, e, t.buf, t.onData); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a regular file made here (0644, now).
func (t *tarWriter) writeFile(name string, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)),
		ModTime: time.Now().Truncate(time.Second), Uname: "root", Gname: "root"}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header of %s: %w", name, err)
	}
	if _, err := t.tw.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func (t *tarWriter) close() error {
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("finishing tar stream: %w", err)
	}
	return nil
}

func header(e entry) *tar.Header {
	m := e.fi.Mode()
	hdr := &tar.Header{
		Name:    e.name,
		Mode:    int64(m.Perm()),
		ModTime: e.fi.ModTime().Truncate(time.Second),
		Uname:   "root",
		Gname:   "root",
	}
	if m&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case m.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case m&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.link
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = e.fi.Size()
	}
	return hdr
}

// copyFile writes exactly the size the header announced; a file that
// shrank since it was listed is an error rather than a corrupt stream.
func copyFile(w io.Writer, e entry, buf []byte, onData func(int64)) (int64, error) {
	// O_NOFOLLOW: a file swapped for a symlink since it was listed is
	// refused rather than followed out of the tree.
	f, err := os.OpenFile(e.src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", e.src, err)
	}
	defer f.Close()
	var done int64
	for done < e.fi.Size() {
		want := min(int64(len(buf)), e.fi.Size()-done)
		n, err := io.ReadFull(f, buf[:want])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return done, fmt.Errorf("sending %s: %w", e.name, werr)
			}
			done += int64(n)
			if onData != nil {
				onData(int64(n))
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return done, fmt.Errorf("%s shrank while it was being copied; run prepare again", e.src)
		}
		if err != nil {
			return done, fmt.Errorf("reading %s: %w", e.src, err)
		}
	}
	return done, nil
}
