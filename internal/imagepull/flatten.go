package imagepull

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"banger/internal/progress"
)

// flattened is an image replayed into one tree, ready to be written.
type flattened struct {
	t      *tree
	spools []*os.File
}

// flatten reads every layer once (in parallel; progress step "unpack"
// per layer), replays them oldest first and adds the extra files.
func flatten(ctx context.Context, layers []Layer, dir string, b *budget, extras []ExtraFile, prog progress.Func) (*flattened, error) {
	scans := make([]*scanned, len(layers))
	f := &flattened{t: newTree(), spools: make([]*os.File, len(layers))}
	err := forEach(ctx, len(layers), runtime.NumCPU(), func(ctx context.Context, i int) error {
		l := layers[i]
		c := progress.NewCounter(prog, "unpack", shortName(l.Digest), l.Size)
		s, err := scanLayer(ctx, l, filepath.Join(dir, fmt.Sprintf(".layer-%03d.spool", i)), b, c)
		if err != nil {
			return err
		}
		c.Done()
		scans[i], f.spools[i] = s, s.spool
		return nil
	})
	if err != nil {
		f.close()
		return nil, err
	}
	for i, s := range scans {
		if err := f.t.apply(i, s.entries, layers[i].Digest); err != nil {
			f.close()
			return nil, err
		}
		scans[i] = nil // entries are in the tree now
	}
	for i := range extras {
		if err := f.t.addExtra(&extras[i], len(layers), i); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

// close removes the spools.
func (f *flattened) close() {
	for _, s := range f.spools {
		if s != nil {
			s.Close()
			os.Remove(s.Name())
		}
	}
}

// forEach runs fn for 0..n-1 with at most jobs at once; the first error
// cancels the rest.
func forEach(ctx context.Context, n, jobs int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func shortName(digest string) string {
	_, hex, _ := strings.Cut(digest, ":")
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

// stats describe the tree as tar2ext4 will write it.
type stats struct {
	inodes  int   // directories and distinct inodes
	content int64 // regular file bytes
	blocks  int64 // 4 KiB blocks of data, directories, long symlinks and xattrs
}

const blockSize = 4096

// maxLinks is ext4's limit on an inode's link count (and so on a
// directory's subdirectories, plus two).
const maxLinks = 65000

// measure walks the tree, checking link limits and estimating its size.
func (t *tree) measure() (stats, error) {
	var st stats
	seen := map[*inode]int{}
	var walk func(n *node) error
	walk = func(n *node) error {
		st.inodes++
		dirBytes, subdirs := 24, 0
		for name, kid := range n.kids {
			dirBytes += 8 + (len(name)+3)&^3
			if kid.isDir() {
				subdirs++
				if err := walk(kid); err != nil {
					return err
				}
				continue
			}
			seen[kid.ino]++
			if seen[kid.ino] > 1 {
				if seen[kid.ino] > maxLinks {
					return fmt.Errorf("%s has more than %d hardlinks, more than ext4 allows", kid.path(), maxLinks)
				}
				continue
			}
			st.inodes++
			st.blocks += inodeBlocks(kid.ino.hdr)
			if kid.ino.hdr.Typeflag == tar.TypeReg {
				st.content += kid.ino.hdr.Size
			}
		}
		if subdirs+2 > maxLinks {
			return fmt.Errorf("%s has %d subdirectories, more than ext4 allows", n.path(), subdirs)
		}
		st.blocks += int64((dirBytes + blockSize - 1) / blockSize)
		st.blocks += xattrBlocks(n.hdr)
		return nil
	}
	err := walk(t.root)
	return st, err
}

func inodeBlocks(h *tar.Header) int64 {
	b := xattrBlocks(h)
	switch h.Typeflag {
	case tar.TypeReg:
		b += (h.Size + blockSize - 1) / blockSize
		b += h.Size / (512 << 20) // extent tree blocks beyond the four extents an inode holds
	case tar.TypeSymlink:
		if len(h.Linkname) > 59 {
			b++
		}
	}
	return b
}

// xattrBlocks is 1 when h's xattrs do not fit in the inode (96 bytes).
func xattrBlocks(h *tar.Header) int64 {
	if h == nil || len(h.PAXRecords) == 0 {
		return 0
	}
	size := 0
	for k, v := range h.PAXRecords {
		size += (len(k)-len(paxXattr)+3)&^3 + xattrEntryExtra + (len(v)+3)&^3
	}
	if size > 96 {
		return 1
	}
	return 0
}

// writeTar emits the tree as one tar stream: every directory first,
// parents before children, then each inode once, in layer order so the
// spools are read front to back: its first path carries the data, the
// others follow at once as hardlinks to it. reserve empty files go last
// in a directory of their own (see ext4.go). c counts file data.
func (f *flattened) writeTar(ctx context.Context, w io.Writer, reserve reservation, c *progress.Counter) error {
	tw := tar.NewWriter(w)
	var inodes []*inode
	paths := map[*inode][]string{}
	var walk func(n *node, p string) error
	walk = func(n *node, p string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.hdr != nil || p != "." {
			if err := tw.WriteHeader(dirHeader(n.hdr, p)); err != nil {
				return err
			}
		}
		for _, name := range slices.Sorted(maps.Keys(n.kids)) {
			kid := n.kids[name]
			kp := join(p, name)
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
	if err := walk(f.t.root, "."); err != nil {
		return err
	}
	slices.SortFunc(inodes, func(a, b *inode) int {
		if a.layer != b.layer {
			return a.layer - b.layer
		}
		return a.seq - b.seq
	})
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
