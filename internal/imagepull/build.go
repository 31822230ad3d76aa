package imagepull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"banger/internal/errdefs"
	"banger/internal/progress"
)

// RootfsName is the file Build writes in its directory.
const RootfsName = "rootfs.ext4"

// BuildOptions say where and how to build a root filesystem. Dir is
// required.
type BuildOptions struct {
	// Dir is the build directory: the rootfs and scratch files are
	// created here and nothing is written anywhere else.
	Dir string
	// Size is the filesystem size in bytes; 0 means the content plus
	// headroom (see targetSize).
	Size int64
	// Extra files are added on top of the image in the same pass.
	Extra []ExtraFile
	// Progress receives steps and byte counts (steps "unpack" per layer,
	// "write" for the rootfs); nil discards them.
	Progress progress.Func
}

// Result describes a built root filesystem.
type Result struct {
	Path    string // Dir/rootfs.ext4
	Size    int64  // filesystem size in bytes
	Content int64  // bytes of file data
	Files   int    // inodes: directories, files, links, devices
}

// Build flattens layers (oldest first) with the extra files into an ext4
// filesystem at Dir/rootfs.ext4. On error or cancellation it removes
// everything it created in Dir.
func Build(ctx context.Context, layers []Layer, o BuildOptions) (res Result, err error) {
	if err := checkTools(); err != nil {
		return Result{}, err
	}
	free, err := freeSpace(o.Dir)
	if err != nil {
		return Result{}, err
	}
	switch {
	case o.Size < 0 || o.Size > maxFilesystemSize:
		return Result{}, errdefs.Invalid("--size %s is out of range; an image can be up to %s", human(o.Size), human(maxFilesystemSize))
	case o.Size > free:
		return Result{}, errdefs.Invalid("--size %s is more than the %s free in %s; pass a smaller --size or free some disk space", human(o.Size), human(free), o.Dir)
	}
	out := filepath.Join(o.Dir, RootfsName)
	defer func() {
		if err != nil {
			os.Remove(out)
		}
	}()
	o.Progress.Step("unpack", fmt.Sprintf("unpacking %d layer(s)", len(layers)))
	f, err := flatten(ctx, layers, o.Dir, newBudget(free-keepFree(free), o.Dir), o.Extra, o.Progress)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	st, err := f.t.measure()
	if err != nil {
		return Result{}, errdefs.Invalid("the image cannot be stored as ext4: %v", err)
	}
	maxSize, err := fitSize(st, o, out)
	if err != nil {
		return Result{}, err
	}
	r := f.t.planReserve(st)
	o.Progress.Step("write", fmt.Sprintf("writing %d files (%s) as ext4", st.inodes, human(st.content)))
	c := progress.NewCounter(o.Progress, "write", RootfsName, st.content)
	if err := convert(ctx, f, out, maxSize, r, c); err != nil {
		return Result{}, err
	}
	c.Done()
	f.close() // give the spool space back before growing the filesystem
	size, err := finish(ctx, out, o.Size, r, o.Progress)
	if err != nil {
		return Result{}, err
	}
	return Result{Path: out, Size: size, Content: st.content, Files: st.inodes}, nil
}

// fitSize checks the estimated filesystem against --size and the disk,
// and returns the bound tar2ext4 enforces while writing.
func fitSize(st stats, o BuildOptions, out string) (int64, error) {
	groups := (st.blocks + dataBlocksPerGroup - 1) / dataBlocksPerGroup
	estimate := (st.blocks + groups*(inodeTableBlocks+2) + 2) * blockSize
	if o.Size > 0 {
		if min := minSize(estimate); min > o.Size {
			return 0, errdefs.Invalid("--size %s is too small: the image needs at least %s; pass a larger --size or omit it for a content-aware size", human(o.Size), human(roundUp(min, 1<<20)))
		}
		return o.Size, nil
	}
	free, err := freeSpace(o.Dir)
	if err != nil {
		return 0, err
	}
	if room := free - keepFree(free); estimate > room {
		return 0, errdefs.Invalid("the image needs about %s but only %s is free in %s; free some disk space", human(estimate), human(max(room, 0)), o.Dir)
	}
	return min(free, maxFilesystemSize), nil
}

// keepFree is the disk space a build leaves to everyone else.
func keepFree(free int64) int64 { return min(1<<30, free/10) }

func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("checking free space in %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
