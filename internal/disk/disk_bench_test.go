package disk

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCopy copies a 2 GiB image holding 250 MiB of random data in
// 250 extents (about what a used root filesystem looks like) three ways:
//
//	naive:   io.Copy of the whole file plus fsync, the obvious alternative
//	sparse:  Copy with WithoutReflink
//	reflink: Copy on an XFS loop mount (root only, skipped otherwise)
//
// The source stays in the page cache, so the numbers are about bytes
// written and synced, which is what differs between the three. SetBytes
// is the apparent size, so MB/s reads as "image size per second".
//
//	go test -run XXX -bench . -benchtime 3x ./internal/disk/
func BenchmarkCopy(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.img")
	size := writeLayout(b, src, benchLayout())

	b.Run("naive", func(b *testing.B) {
		benchCopy(b, size, src, filepath.Join(dir, "naive.img"), naiveCopy)
	})
	b.Run("sparse", func(b *testing.B) {
		benchCopy(b, size, src, filepath.Join(dir, "sparse.img"), func(src, dst string) error {
			_, err := Copy(context.Background(), src, dst, WithoutReflink())
			return err
		})
	})
	b.Run("reflink", func(b *testing.B) {
		mnt := mountXFS(b, 8<<30)
		xsrc := filepath.Join(mnt, "src.img")
		if _, err := Copy(context.Background(), src, xsrc); err != nil {
			b.Fatal(err)
		}
		benchCopy(b, size, xsrc, filepath.Join(mnt, "reflink.img"), func(src, dst string) error {
			m, err := Copy(context.Background(), src, dst)
			if err == nil && m != Reflink {
				b.Fatalf("method = %q on XFS, want %q", m, Reflink)
			}
			return err
		})
	})
}

func benchLayout() []segment {
	var segs []segment
	for range 250 {
		segs = append(segs, segment{random, mib}, segment{hole, 2<<30/250 - mib})
	}
	return segs
}

// benchCopy times copy from src to dst, removing dst between rounds.
func benchCopy(b *testing.B, size int64, src, dst string, copy func(src, dst string) error) {
	b.SetBytes(size)
	for b.Loop() {
		if err := copy(src, dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// naiveCopy is what one writes without thinking about holes. (io.Copy
// between files does use copy_file_range, but on ext4 that still reads
// and writes every hole as zeros.)
func naiveCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}
