package imagepull

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"banger/internal/progress"
)

// writeTar emits the tree as one tar stream: every directory first,
// parents before children, then each inode once, in layer order so the
// spools are read front to back: its first path carries the data, the
// others follow at once as hardlinks to it. reserve empty files go last
// in a directory of their own (see ext4.go). c counts file data.
func (f *flattened) writeTar(ctx context.Context, w io.Writer, reserve reservation, c *progress.Counter) error {
	tw := tar.NewWriter(w)
	inodes, paths, err := writeDirs(ctx, tw, f.t.root)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for _, ino := range inodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		ps := paths[ino]
		if err := f.writeInode(tw, ino, ps[0], buf, c); err != nil {
			return err
		}
		for _, p := range ps[1:] {
			h := &tar.Header{Typeflag: tar.TypeLink, Name: p, Linkname: ps[0], Format: tar.FormatPAX}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
	}
	if err := reserve.write(tw); err != nil {
		return err
	}
	return tw.Close()
}

// writeDirs writes the directories under root (sorted, parents first)
// and returns the other inodes in layer order with their paths.
func writeDirs(ctx context.Context, tw *tar.Writer, root *node) ([]*inode, map[*inode][]string, error) {
	var inodes []*inode
	paths := map[*inode][]string{}
	var walk func(n *node, p string) error
	walk = func(n *node, p string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.hdr != nil || p != "." { // an implicit root keeps tar2ext4's defaults
			if err := tw.WriteHeader(dirHeader(n.hdr, p)); err != nil {
				return err
			}
		}
		for _, name := range slices.Sorted(maps.Keys(n.kids)) {
			kid, kp := n.kids[name], join(p, name)
			if kid.isDir() {
				if err := walk(kid, kp); err != nil {
					return err
				}
				continue
			}
			if _, ok := paths[kid.ino]; !ok {
				inodes = append(inodes, kid.ino)
			}
			paths[kid.ino] = append(paths[kid.ino], kp)
		}
		return nil
	}
	if err := walk(root, "."); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(inodes, func(a, b *inode) int {
		if a.layer != b.layer {
			return a.layer - b.layer
		}
		return a.seq - b.seq
	})
	return inodes, paths, nil
}

func (f *flattened) writeInode(tw *tar.Writer, ino *inode, name string, buf []byte, c *progress.Counter) error {
	h := *ino.hdr
	h.Name, h.Format = name, tar.FormatPAX
	fillTimes(&h)
	if err := tw.WriteHeader(&h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return nil
	}
	var src io.Reader
	if ino.extra != nil {
		src = io.LimitReader(ino.extra.Content, h.Size)
	} else {
		src = io.NewSectionReader(f.spools[ino.layer], ino.off, h.Size)
	}
	n, err := io.CopyBuffer(writerOnly{tw}, c.Reader(readerOnly{src}), buf)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%s: got %d of %d bytes", name, n, h.Size)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

var epoch = time.Unix(0, 0)

// dirHeader describes directory p; an implicit one (h nil) is root:root
// 0755.
func dirHeader(h *tar.Header, p string) *tar.Header {
	out := tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}
	if h != nil {
		out = *h
	}
	out.Name, out.Format = p, tar.FormatPAX
	fillTimes(&out)
	return &out
}

func fillTimes(h *tar.Header) {
	if h.AccessTime.IsZero() {
		h.AccessTime = h.ModTime
	}
	if h.ChangeTime.IsZero() {
		h.ChangeTime = h.ModTime
	}
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

type readerOnly struct{ io.Reader }
