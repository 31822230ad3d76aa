package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"banger/internal/progress"
)

const (
	// chunkSize is the unit of reading, cancellation checks and progress.
	chunkSize = 1 << 20
	// zeroBlock is the granularity of zero detection: the common
	// filesystem block size, the smallest hole a filesystem can keep.
	zeroBlock = 4096
)

var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}
	zeros   = make([]byte, zeroBlock)
)

// copySparse copies the data extents of in to the fresh, empty out and
// sets out's size, so holes in in stay holes in out.
//
// Data goes through a user-space buffer rather than copy_file_range:
// spotting zero blocks means reading the bytes anyway, and once they are
// read, writing them from the buffer costs the same as asking the kernel
// to read them again (measured: 256 MiB on ext4, fsync included, 216 ms
// read/write vs 233 ms copy_file_range). Skipping zero blocks is what
// keeps fully-allocated images (mkfs, dd) small in the copy.
func copySparse(ctx context.Context, in, out *os.File, size int64, c *progress.Counter) error {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	err := walkData(in, size, func(start, end int64) error {
		for off := start; off < end; {
			// Between chunks, so a cancel takes effect within 1 MiB.
			if err := ctx.Err(); err != nil {
				return err
			}
			b := (*buf)[:min(end-off, chunkSize)]
			if err := readFull(in, b, off); err != nil {
				return err
			}
			if err := writeNonZero(out, b, off); err != nil {
				return err
			}
			c.Add(int64(len(b)))
			off += int64(len(b))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Trailing holes were never written; only the size makes them exist.
	return out.Truncate(size)
}

func readFull(in *os.File, b []byte, off int64) error {
	_, err := in.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("reading %s: file shrank during the copy", in.Name())
	}
	return err
}

// writeNonZero writes b to out at off, skipping every all-zero block. out
// is fresh, so what is skipped reads back as zeros and stays unallocated.
func writeNonZero(out *os.File, b []byte, off int64) error {
	run := -1 // start of the pending run of non-zero blocks
	for i := 0; i < len(b); i += zeroBlock {
		blk := b[i:min(i+zeroBlock, len(b))]
		zero := bytes.Equal(blk, zeros[:len(blk)])
		switch {
		case !zero && run < 0:
			run = i
		case zero && run >= 0:
			if _, err := out.WriteAt(b[run:i], off+int64(run)); err != nil {
				return err
			}
			run = -1
		}
	}
	if run >= 0 {
		_, err := out.WriteAt(b[run:], off+int64(run))
		return err
	}
	return nil
}

// walkData calls fn for each data range [start, end) of f, in order, up
// to size. Filesystems without SEEK_DATA are treated as all data; zero
// detection still keeps their copies sparse.
func walkData(f *os.File, size int64, fn func(start, end int64) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // only a hole is left
			return nil
		case errors.Is(err, unix.EINVAL) && off == 0:
			return fn(0, size)
		case err != nil:
			return fmt.Errorf("finding data in %s: %w", f.Name(), err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("finding holes in %s: %w", f.Name(), err)
		}
		// The file may have grown since it was measured; copy what was.
		end = min(end, size)
		if start >= end {
			return nil
		}
		if err := fn(start, end); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// dataSize sums the data ranges of f up to size.
func dataSize(f *os.File, size int64) (int64, error) {
	var n int64
	err := walkData(f, size, func(start, end int64) error {
		n += end - start
		return nil
	})
	return n, err
}
