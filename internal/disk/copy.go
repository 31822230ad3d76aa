package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"banger/internal/fsutil"
	"banger/internal/progress"
)

// Method says how Copy copied a file.
type Method string

const (
	// Reflink shares the source's extents copy-on-write: instant, and no
	// extra space is used until one side is written.
	Reflink Method = "reflink"
	// Sparse copies only the source's non-zero data; holes and zero
	// blocks stay unallocated in the copy.
	Sparse Method = "sparse"
)

// Option tunes Copy and CopyTree.
type Option func(*options)

type options struct {
	progress  *progress.Counter
	noReflink bool
	// The fields below are set by CopyTree only.
	noFollow bool // open sources with O_NOFOLLOW so a swapped-in symlink is refused
	noSync   bool // the tree is flushed with one syncfs instead of an fsync per file
}

// WithProgress adds the data bytes copied to c (see the package doc).
func WithProgress(c *progress.Counter) Option {
	return func(o *options) { o.progress = c }
}

// WithoutReflink forces the sparse copy even where reflinks work, for
// tests and benchmarks, or when the copy must not share extents.
func WithoutReflink() Option {
	return func(o *options) { o.noReflink = true }
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Copy copies the regular file src to dst, which must not exist, with
// src's permission bits. It reflinks where the filesystem allows and
// falls back to a sparse copy, reporting which it did. On error or
// cancellation dst is removed.
func Copy(ctx context.Context, src, dst string, opts ...Option) (Method, error) {
	m, err := copyFile(ctx, src, dst, newOptions(opts))
	if err != nil {
		return "", fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return m, nil
}

func copyFile(ctx context.Context, src, dst string, o options) (Method, error) {
	in, fi, err := openSource(src, o.noFollow)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// 0600 until the copy is complete: nobody else should read half a disk.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err // not ours to remove, whether it exists or not
	}
	m, err := fill(ctx, in, out, fi.Size(), o)
	if err == nil {
		err = finish(out, fi.Mode().Perm(), o.noSync)
	}
	if err != nil {
		out.Close()
		os.Remove(dst)
		return "", err
	}
	return m, nil
}

// openSource opens src for reading and checks it is a regular file.
// O_NONBLOCK keeps a FIFO from blocking the open until a writer appears;
// it has no effect on regular files.
func openSource(src string, noFollow bool) (*os.File, fs.FileInfo, error) {
	flags := os.O_RDONLY | unix.O_NONBLOCK
	if noFollow {
		flags |= unix.O_NOFOLLOW
	}
	in, err := os.OpenFile(src, flags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := in.Stat()
	if err != nil {
		in.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		in.Close()
		return nil, nil, fmt.Errorf("%s is a %s, not a regular file", src, typeName(fi.Mode()))
	}
	return in, fi, nil
}

// fill copies the content of in (size bytes) into the empty file out.
func fill(ctx context.Context, in, out *os.File, size int64, o options) (Method, error) {
	if !o.noReflink {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			return Reflink, addDataSize(o.progress, in, size)
		}
		if !cloneUnsupported(err) {
			return "", fmt.Errorf("cloning %s: %w", in.Name(), err)
		}
	}
	if err := copySparse(ctx, in, out, size, o.progress); err != nil {
		return "", err
	}
	return Sparse, nil
}

// cloneUnsupported tells "this filesystem (pair) cannot reflink", which
// means fall back, from real failures such as EIO or ENOSPC.
func cloneUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY)
}

// addDataSize reports a reflinked file's data bytes in one go, so the
// count matches what a sparse copy would have reported.
func addDataSize(c *progress.Counter, in *os.File, size int64) error {
	if c == nil {
		return nil
	}
	n, err := dataSize(in, size)
	c.Add(n)
	return err
}

// finish gives out its final mode and makes it durable. The directory is
// synced too, or a crash could lose the new name while the caller has
// already recorded the copy as done.
func finish(out *os.File, perm fs.FileMode, noSync bool) error {
	// Chmod rather than the create mode, which the umask would trim.
	if err := out.Chmod(perm); err != nil {
		return err
	}
	if !noSync {
		if err := out.Sync(); err != nil {
			return err
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return fsutil.SyncDir(filepath.Dir(out.Name()))
}

// typeName names a non-regular file type for error messages.
func typeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t.IsRegular():
		return "regular file"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	default:
		return "special file"
	}
}
