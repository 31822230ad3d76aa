// Package disk copies VM disk images and artifact trees fast and safely.
//
// A disk image is mostly holes: a 20 GiB root filesystem fresh from mkfs
// holds a few hundred MiB of data. Copy therefore never reads the file
// front to back. It first asks the filesystem for a reflink (FICLONE),
// which on XFS and btrfs shares the source's extents copy-on-write and
// finishes in milliseconds whatever the size. Where that is not supported
// (ext4, tmpfs, across filesystems) it walks the source's data extents
// with SEEK_DATA/SEEK_HOLE and copies only those, leaving holes as holes
// and turning all-zero blocks inside data extents into holes too.
//
// Every copy creates its destination exclusively, is fsynced before it
// returns, and is removed again on any error or cancellation, so a path
// that exists after a successful call is a complete copy.
//
// Progress (WithProgress) counts data bytes: the bytes in the source's
// data extents, whether they were written or skipped as zeros, and the
// whole data size at once for a reflink. Holes are not counted. Create
// the progress.Counter with DataSize(src) as its total so the count ends
// at exactly the total; the caller owns the counter and calls Done. (On
// XFS a preallocated extent counts as data once its pages are cached, so
// a file read between DataSize and Copy can count a little more.)
package disk
