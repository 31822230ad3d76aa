package imagepull

import (
	"archive/tar"
	"fmt"

	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/disk"
)

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

// journalBlocks is e2fsprogs' default journal size for a filesystem of
// blocks 4 KiB blocks (ext2fs_default_journal_size).
func journalBlocks(blocks int64) int64 {
	switch {
	case blocks < 2048:
		return 0
	case blocks < 32768:
		return 1024
	case blocks < 256*1024:
		return 4096
	case blocks < 512*1024:
		return 8192
	case blocks < 4096*1024:
		return 16384
	case blocks < 8192*1024:
		return 32768
	case blocks < 16384*1024:
		return 65536
	case blocks < 32768*1024:
		return 131072
	}
	return 262144
}

// Headroom of a content-aware size: the larger of 1 GiB and half the
// content, so a fresh VM can install packages, rounded up to 64 MiB.
const (
	minHeadroom = 1 << 30
	sizeRound   = 64 << 20
)

// targetSize picks the filesystem size for used bytes of filesystem
// (tar2ext4's compact image): want when set, else content-aware.
func targetSize(used, want int64) (int64, error) {
	if want > 0 {
		size := want &^ (blockSize - 1)
		if err := fits(used, size); err != nil {
			return 0, err
		}
		return size, nil
	}
	size := used + max(minHeadroom, used/2)
	size += journalBlocks(size/blockSize) * blockSize
	return roundUp(size, sizeRound), nil
}

// minSize is the smallest filesystem for used bytes: the content, its
// journal and 5% free.
func minSize(used int64) int64 {
	size := used + used/20 + (16 << 20)
	return size + journalBlocks(size/blockSize)*blockSize
}

// fits checks that a filesystem of used bytes fits in size.
func fits(used, size int64) error {
	if min := minSize(used); size < min {
		return errdefs.Invalid("--size %s is too small: the image needs at least %s; pass a larger --size or omit it for a content-aware size", bytesize.Format(size), bytesize.Format(roundUp(min, 1<<20)))
	}
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// fitSize checks the estimated filesystem against --size and the disk,
// and returns the bound tar2ext4 enforces while writing.
func fitSize(st stats, o BuildOptions) (int64, error) {
	groups := (st.blocks + dataBlocksPerGroup - 1) / dataBlocksPerGroup
	estimate := (st.blocks + groups*(inodeTableBlocks+2) + 2) * blockSize
	if o.Size > 0 {
		return o.Size, fits(estimate, o.Size)
	}
	free, err := freeSpace(o.Dir)
	if err != nil {
		return 0, err
	}
	if room := free - keepFree(free); estimate > room {
		return 0, errdefs.Invalid("the image needs about %s but only %s is free in %s; free some disk space", bytesize.Format(estimate), bytesize.Format(max(room, 0)), o.Dir)
	}
	return min(free, maxFilesystemSize), nil
}

var (
	keepFree  = disk.KeepFree
	freeSpace = disk.Available
)
