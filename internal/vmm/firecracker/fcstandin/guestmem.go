package fcstandin

import (
	"archive/tar"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The stand-in's guest memory file: this header, the length of what
// follows, then a tar of the guest's memory directory; the file is as
// large as the guest's memory (sparse past the tar), as Firecracker's is.
const memoryMagic = "fcstandin-guest-memory\n"

// memoryDir is this process's guest memory directory, under GuestDir.
func (s *Server) memoryDir() (string, error) {
	if s.cfg.GuestDir == "" {
		d, err := os.MkdirTemp("", "fcstandin-guest-")
		if err != nil {
			return "", err
		}
		s.cfg.GuestDir = d
	}
	return filepath.Join(s.cfg.GuestDir, "ram."+strconv.Itoa(os.Getpid())), nil
}

// freshMemory gives the guest an empty memory, as a cold boot does.
func (s *Server) freshMemory() error {
	dir, err := s.memoryDir()
	if err != nil {
		return fmt.Errorf("making the guest's memory: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("making the guest's memory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("making the guest's memory: %w", err)
	}
	s.ram = dir
	return nil
}

// saveGuest writes the guest's memory into a memory file of size bytes.
func (s *Server) saveGuest(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := int64(len(memoryMagic) + 8)
	if _, err := f.Seek(hdr, io.SeekStart); err != nil {
		return err
	}
	w := &countWriter{w: bufio.NewWriter(f), max: size - hdr}
	if err := writeTree(w, s.ram); err != nil {
		return err
	}
	if err := w.w.(*bufio.Writer).Flush(); err != nil {
		return err
	}
	head := make([]byte, hdr)
	copy(head, memoryMagic)
	binary.BigEndian.PutUint64(head[len(memoryMagic):], uint64(w.n))
	if _, err := f.WriteAt(head, 0); err != nil {
		return err
	}
	return f.Truncate(size)
}

// restoreGuest gives the guest the memory saved in path and starts its
// agent, which finds everything it kept before the snapshot.
func (s *Server) restoreGuest(path string) error {
	if err := s.freshMemory(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, len(memoryMagic)+8)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:len(memoryMagic)]) != memoryMagic {
		return errors.New("the memory file holds no stand-in guest memory")
	}
	n := binary.BigEndian.Uint64(head[len(memoryMagic):])
	if n > uint64(fi.Size()) {
		return errors.New("the memory file's guest memory is cut short")
	}
	if err := readTree(io.LimitReader(f, int64(n)), s.ram); err != nil {
		return fmt.Errorf("restoring the guest's memory: %w", err)
	}
	s.startAgent()
	return nil
}

// writeTree writes the directories and regular files under dir as a tar.
func writeTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets and links are not the guest's memory
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.CopyN(tw, src, h.Size)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// readTree extracts a tar written by writeTree into dir, confined to it:
// only directories and regular files, no absolute names and no "..".
func readTree(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("entry %q is outside the guest's memory", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(h.Mode)&0o777)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// countWriter counts what goes through it and refuses more than max.
type countWriter struct {
	w   io.Writer
	n   int64
	max int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.max {
		return 0, errors.New("the guest's memory does not fit its memory size")
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
