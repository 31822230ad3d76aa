package imagepull

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"

	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/progress"
)

// tar2ext4 sizes each block group's inode table to fit exactly the
// inodes it writes, and resize2fs gives every group it adds the same
// number, so an image of a few large files would grow into a filesystem
// with almost no free inodes. When the image is that sparse we add empty
// placeholder files until each group has minInodesPerGroup inodes (one
// per 32 KiB, half of mkfs's default density), and free them afterwards
// (ext4 keeps the table size; see clearReserve). Placeholders cost about
// 70 µs each, so a huge image of few files gets at most maxReserve.
const (
	maxReserve         = 1 << 16
	blocksPerGroup     = 32768
	minInodesPerGroup  = 4096
	inodeTableBlocks   = minInodesPerGroup * 256 / blockSize
	dataBlocksPerGroup = blocksPerGroup - inodeTableBlocks - 2
	maxFilesystemSize  = 16<<40 - blockSize // ext4 without the 64bit feature
)

// reservation is the placeholder directory and how many empty files it
// holds.
type reservation struct {
	dir   string
	files int
}

func (r reservation) write(tw *tar.Writer) error {
	if r.files == 0 {
		return nil
	}
	h := &tar.Header{Typeflag: tar.TypeDir, Name: r.dir, Mode: 0o700, ModTime: epoch}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	for i := range r.files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: r.dir + "/" + strconv.FormatInt(int64(i), 36), Mode: 0o600, ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return nil
}

// planReserve decides how many placeholder inodes st needs.
func (t *tree) planReserve(st stats) reservation {
	groups := int((st.blocks + 2 + dataBlocksPerGroup - 1) / dataBlocksPerGroup)
	want := groups*minInodesPerGroup - st.inodes - 11 // 11 reserved inodes incl. lost+found
	if want <= 0 {
		return reservation{}
	}
	dir := ".banger-inode-reserve"
	for t.root.kids[dir] != nil {
		dir += "_"
	}
	return reservation{dir: dir, files: min(want, maxReserve) + 1} // +1: the directory itself is freed too
}

var errStopped = errors.New("ext4 conversion stopped")

// convert writes f as a compact ext4 image at out with tar2ext4, bounded
// by maxSize. c counts file data.
func convert(ctx context.Context, f *flattened, out string, maxSize int64, r reservation, c *progress.Counter) error {
	file, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	defer file.Close()
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := f.writeTar(ctx, pw, r, c)
		pw.CloseWithError(err)
		werr <- err
	}()
	err = tar2ext4.ConvertTarToExt4(pr, file, tar2ext4.MaximumDiskSize(maxSize))
	pr.CloseWithError(errStopped) // unblocks the writer if conversion failed
	if wErr := <-werr; wErr != nil && !errors.Is(wErr, errStopped) && (err == nil || ctx.Err() != nil) {
		err = wErr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.Contains(err.Error(), "exceeded maximum size") { // tar2ext4's unexported exceededMaxSizeError
			return errdefs.Invalid("the image does not fit in %s; pass a larger --size or free some disk space", bytesize.Format(maxSize))
		}
		return fmt.Errorf("writing ext4: %w", err)
	}
	return file.Close()
}
