package debootstrap

import (
	"banger/internal/disk"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

const mib = 1 << 20

// Ext4FromDir packs dir into a new ext4 image at out of size bytes
// (rounded up to a whole MiB), with mkfs.ext4 -d. A size of 0 picks one
// from the content: its disk usage (or what its inodes need, when that is
// more) plus 30%, plus 512 MiB of free space. Run it as root so every
// file keeps its owner; / is owned by root either way. out appears only
// once complete.
func Ext4FromDir(ctx context.Context, dir, out string, size int64) error {
	if size < 0 {
		return fmt.Errorf("ext4 image of %s: size %d is negative; pass 0 for an automatic size", dir, size)
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return errors.New("mkfs.ext4 is not installed (not on PATH): install it (apt-get install e2fsprogs)")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("ext4 image of %s: not a directory", dir)
	}
	if size == 0 {
		var err error
		if size, err = autoSize(dir); err != nil {
			return err
		}
	}
	sizeMiB := (size + mib - 1) / mib

	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("ext4 image of %s: %w", dir, err)
	}
	tmp := f.Name()
	// Sized up front: mkfs.ext4 may leave a partial last block group
	// unused and the file shorter than asked.
	err = f.Truncate(sizeMiB * mib)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ext4 image of %s: %w", dir, err)
	}
	cmd := exec.CommandContext(ctx, "mkfs.ext4", ext4Args(dir, tmp, sizeMiB)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return fmt.Errorf("ext4 image of %s: %w", dir, ctx.Err())
		}
		hint := "check mkfs.ext4 supports -d (e2fsprogs 1.43 or newer) and there is free space in " + filepath.Dir(out)
		if s := string(b); strings.Contains(s, "Could not allocate") || strings.Contains(s, "No space left") {
			hint = fmt.Sprintf("%d MiB is too small for %s: pass a larger size, or 0 for an automatic one", sizeMiB, dir)
		}
		return fmt.Errorf("mkfs.ext4 of %s failed: %v\n%s\n%s", dir, err, strings.TrimSpace(string(b)), hint)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ext4 image of %s: %w", dir, err)
	}
	return nil
}

// ext4Args is mkfs.ext4's command line packing dir into out.
func ext4Args(dir, out string, sizeMiB int64) []string {
	return []string{"-q", "-F", "-E", "root_owner=0:0", "-d", dir, out, strconv.FormatInt(sizeMiB, 10) + "M"}
}

// bytesPerInode is mkfs.ext4's default inode ratio.
const bytesPerInode = 16 << 10

// autoSize is the image size for dir: its disk usage (blocks, counting
// hard links once) or the space its inodes need under the default inode
// ratio, whichever is larger, plus 30%, plus 512 MiB.
func autoSize(dir string) (int64, error) {
	used, inodes, err := disk.Du(dir, false)
	if err != nil {
		return 0, fmt.Errorf("sizing the ext4 image of %s: %w", dir, err)
	}
	return imageSize(used, inodes), nil
}

func imageSize(used, inodes int64) int64 {
	need := max(used, inodes*bytesPerInode)
	size := need + need*3/10 + 512*mib
	return (size + mib - 1) / mib * mib
}
