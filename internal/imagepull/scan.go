package imagepull

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/progress"
)

// Limits on what a layer may ask of us, beyond the disk budget.
const (
	maxEntries   = 2_000_000 // inodes across all layers
	maxPathLen   = 4096
	maxNameLen   = 255  // one path component, as in ext4
	maxLinkLen   = 4095 // a symlink target, one ext4 block minus NUL
	maxXattrSize = 3800 // all of an entry's xattrs: they must fit one block
)

type entryKind uint8

const (
	entryAdd      entryKind = iota
	entryWhiteout           // name is the path to hide
	entryOpaque             // name is the directory whose lower content to hide
)

// entry is one checked tar entry of a layer. Regular file data is in
// the layer's spool at off.
type entry struct {
	kind entryKind
	name string      // cleaned, relative to the root; "" is the root
	hdr  *tar.Header // entryAdd only; Name and PAXRecords are not used
	link string      // hardlink target, cleaned
	off  int64
}

// scanned is a layer read once: its entries in archive order and the
// spool holding their file data.
type scanned struct {
	entries []entry
	spool   *os.File
}

// budget bounds what all layers together may unpack, so a compression
// bomb or a lying header fails fast with a clear error.
type budget struct {
	bytes   atomic.Int64 // left to spool
	entries atomic.Int64 // left to index
	limit   int64
	where   string
	size    bool // limit is --size, not the free disk space
}

func newBudget(limit int64, where string) *budget {
	b := &budget{limit: limit, where: where}
	b.bytes.Store(limit)
	b.entries.Store(maxEntries)
	return b
}

func (b *budget) take(n int64) error {
	if b.bytes.Add(-n) < 0 {
		if b.size {
			return errdefs.Invalid("the image's layers unpack to more than --size %s (files that later layers delete count too); pass a larger --size or omit it for a content-aware size", bytesize.Format(b.limit))
		}
		return errdefs.Invalid("the image's layers unpack to more than %s, the free disk space in %s (less a reserve); free some space, or check that the image is what you meant", bytesize.Format(b.limit), b.where)
	}
	return nil
}

func (b *budget) entry() error {
	if b.entries.Add(-1) < 0 {
		return errdefs.Invalid("the image has more than %d files; banger does not build root filesystems that large", maxEntries)
	}
	return nil
}

// scanLayer decompresses layer l once, checks every entry, spools file
// data to spoolPath and returns the entries. c counts compressed bytes.
func scanLayer(ctx context.Context, l Layer, spoolPath string, b *budget, c *progress.Counter) (_ *scanned, err error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", l.Digest, err)
	}
	defer f.Close()
	r, closeR, err := decompress(ctxReader{ctx, c.Reader(f)})
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer closeR()
	r = badData{r}
	spool, err := os.OpenFile(spoolPath, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating spool for layer %s: %w", l.Digest, err)
	}
	defer func() {
		if err != nil {
			spool.Close()
			os.Remove(spoolPath)
		}
	}()
	s := &scanned{spool: spool}
	bw := bufio.NewWriterSize(writerOnly{spool}, 1<<20)
	var off int64
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errdefs.Invalid("layer %s is not a valid tar stream: %v", l.Digest, err)
		}
		e, ok, err := checkEntry(hdr)
		if err != nil {
			return nil, errdefs.Invalid("layer %s: %v", l.Digest, err)
		}
		if !ok {
			continue
		}
		if err := b.entry(); err != nil {
			return nil, err
		}
		if e.kind == entryAdd && e.hdr.Typeflag == tar.TypeReg {
			if err := b.take(hdr.Size); err != nil {
				return nil, err
			}
			if err := spoolData(ctx, bw, tr, hdr); err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			e.off = off
			off += hdr.Size
		}
		s.entries = append(s.entries, e)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing spool for layer %s: %w", l.Digest, err)
	}
	return s, nil
}

// spoolData copies one file's data from the tar stream to the spool.
func spoolData(ctx context.Context, w io.Writer, tr *tar.Reader, hdr *tar.Header) error {
	n, err := io.Copy(w, tr)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil && n == hdr.Size:
		return nil
	case err == nil || errors.Is(err, io.ErrUnexpectedEOF):
		return errdefs.Invalid("%s holds %d of the %d bytes its header announces; the layer is truncated or corrupt", hdr.Name, n, hdr.Size)
	case errors.Is(err, errdefs.ErrInvalid): // from the decompressor, see badData
		return fmt.Errorf("reading %s: %w", hdr.Name, err)
	}
	return fmt.Errorf("spooling %s: %w", hdr.Name, err)
}

// decompress detects gzip, zstd or a plain tar by magic number rather
// than trusting the media type.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, errdefs.Invalid("reading gzip: %v", err)
		}
		return zr, func() { zr.Close() }, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, nil, errdefs.Invalid("reading zstd: %v", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// checkEntry confines and normalises one header. ok is false for
// entries that carry nothing for the filesystem.
func checkEntry(hdr *tar.Header) (e entry, ok bool, err error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return entry{}, false, err
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == opaqueMarker:
			return entry{kind: entryOpaque, name: dir}, true, nil
		case strings.HasPrefix(base, whiteoutMeta):
			return entry{}, false, nil // aufs bookkeeping (.wh..wh.plnk and friends)
		}
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return entry{}, false, fmt.Errorf("whiteout %q names no file in its directory", hdr.Name)
		}
		return entry{kind: entryWhiteout, name: path.Join(dir, target)}, true, nil
	}
	h := &tar.Header{
		Typeflag: hdr.Typeflag, Mode: hdr.Mode & 0o7777, Uid: hdr.Uid, Gid: hdr.Gid,
		ModTime: hdr.ModTime, AccessTime: hdr.AccessTime, ChangeTime: hdr.ChangeTime,
		Devmajor: hdr.Devmajor, Devminor: hdr.Devminor,
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-1 || int64(hdr.Gid) > 1<<32-1 {
		return entry{}, false, fmt.Errorf("%s: uid/gid %d/%d out of range", hdr.Name, hdr.Uid, hdr.Gid)
	}
	if h.PAXRecords, err = xattrRecords(hdr); err != nil {
		return entry{}, false, fmt.Errorf("%s: %w", hdr.Name, err)
	}
	e = entry{kind: entryAdd, name: name, hdr: h}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		h.Typeflag, h.Size = tar.TypeReg, hdr.Size
	case tar.TypeDir:
	case tar.TypeSymlink:
		if hdr.Linkname == "" || len(hdr.Linkname) > maxLinkLen || strings.ContainsRune(hdr.Linkname, 0) {
			return entry{}, false, fmt.Errorf("symlink %s has an empty or overlong target", hdr.Name)
		}
		h.Linkname = hdr.Linkname
	case tar.TypeLink:
		if e.link, err = cleanName(hdr.Linkname); err != nil || e.link == "" {
			return entry{}, false, fmt.Errorf("hardlink %s -> %q: target is outside the image root", hdr.Name, hdr.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		// Kept as ext4 inodes; never created on the host.
	default:
		return entry{}, false, nil // global headers, volume labels, ...: nothing to store
	}
	if name == "" && hdr.Typeflag != tar.TypeDir {
		return entry{}, false, fmt.Errorf("entry %q replaces the root directory with a non-directory", hdr.Name)
	}
	return e, true, nil
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// cleanName confines a tar path to the root: a leading "/" is dropped
// (absolute names are relative to the image root) and a ".." that would
// climb out is an error.
func cleanName(raw string) (string, error) {
	if strings.ContainsRune(raw, 0) {
		return "", fmt.Errorf("entry name %q holds a NUL byte", raw)
	}
	n := path.Clean(strings.TrimLeft(raw, "/"))
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("entry %q escapes the image root", raw)
	}
	if n == "." {
		return "", nil
	}
	if len(n) > maxPathLen {
		return "", fmt.Errorf("entry name is %d bytes long, more than %d", len(n), maxPathLen)
	}
	for _, c := range strings.Split(n, "/") {
		if len(c) > maxNameLen {
			return "", fmt.Errorf("entry %q has a component longer than %d bytes", raw, maxNameLen)
		}
	}
	return n, nil
}

// badData marks read errors of the decompressed stream as invalid input,
// so they are told apart from failures to write the spool.
type badData struct{ r io.Reader }

func (b badData) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = errdefs.Invalid("corrupt layer data: %w", err)
	}
	return n, err
}

// writerOnly hides ReadFrom, so bufio and io.Copy use their own buffers
// instead of allocating one per file.
type writerOnly struct{ io.Writer }
