package imagepull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"banger/api/errdefs"
	"banger/internal/bytesize"
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
		return Result{}, errdefs.Invalid("--size %s is out of range; an image can be up to %s", bytesize.Format(o.Size), bytesize.Format(maxFilesystemSize))
	case o.Size > free:
		return Result{}, errdefs.Invalid("--size %s is more than the %s free in %s; pass a smaller --size or free some disk space", bytesize.Format(o.Size), bytesize.Format(free), o.Dir)
	}
	out := filepath.Join(o.Dir, RootfsName)
	if _, err := os.Lstat(out); err == nil {
		return Result{}, fmt.Errorf("%s already exists; build into an empty directory", out)
	}
	defer func() {
		if err != nil {
			os.Remove(out)
		}
	}()
	o.Progress.Step("unpack", fmt.Sprintf("unpacking %d layer(s)", len(layers)))
	f, err := flatten(ctx, layers, o.Dir, unpackBudget(free, o), o.Extra, o.Progress)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	st, err := f.t.measure()
	if err != nil {
		return Result{}, errdefs.Invalid("the image cannot be stored as ext4: %v", err)
	}
	maxSize, err := fitSize(st, o)
	if err != nil {
		return Result{}, err
	}
	r := f.t.planReserve(st)
	o.Progress.Step("write", fmt.Sprintf("writing %d files (%s) as ext4", st.inodes, bytesize.Format(st.content)))
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

// unpackBudget bounds the file data the layers may spool: the free disk
// less a reserve and, with --size, the size itself, since a filesystem
// cannot hold more data than its size. Files a later layer deletes count
// too: they are spooled before the layers are replayed.
func unpackBudget(free int64, o BuildOptions) *budget {
	room := free - keepFree(free)
	if o.Size > 0 && o.Size < room {
		b := newBudget(o.Size, o.Dir)
		b.size = true
		return b
	}
	return newBudget(room, o.Dir)
}
