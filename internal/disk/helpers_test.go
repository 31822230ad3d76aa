package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// segKind is what one stretch of a test file is made of.
type segKind int

const (
	hole   segKind = iota // never written
	random                // random bytes
	zeroed                // zeros written out, so allocated in the source
)

type segment struct {
	kind segKind
	size int64
}

// writeLayout creates path from segs, in order, and returns its size.
func writeLayout(tb testing.TB, path string, segs []segment) int64 {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1})
	var off int64
	for _, s := range segs {
		if s.kind != hole {
			buf := make([]byte, s.size)
			if s.kind == random {
				rng.Read(buf)
			}
			if _, err := f.WriteAt(buf, off); err != nil {
				tb.Fatal(err)
			}
		}
		off += s.size
	}
	if err := f.Truncate(off); err != nil {
		tb.Fatal(err)
	}
	// Flushed, so extents are what the filesystem settled on: XFS turns
	// post-EOF preallocation into zeroed data at writeback, changing
	// what SEEK_DATA reports afterwards.
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	return off
}

// span is a byte range [Start, End).
type span struct{ Start, End int64 }

// randomSpans is where writeLayout put non-zero bytes: where a sparse
// copy must have data, and only there.
func randomSpans(segs []segment) []span {
	var out []span
	var off int64
	for _, s := range segs {
		if s.kind == random {
			if n := len(out); n > 0 && out[n-1].End == off {
				out[n-1].End += s.size
			} else {
				out = append(out, span{off, off + s.size})
			}
		}
		off += s.size
	}
	return out
}

// dataSpans asks the filesystem where path has data.
func dataSpans(tb testing.TB, path string) []span {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	var out []span
	err = walkData(f, fi.Size(), func(start, end int64) error {
		out = append(out, span{start, end})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func digest(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mountXFS mounts a fresh reflink-enabled XFS image of size bytes and
// returns the mountpoint, or skips when this machine cannot do that.
func mountXFS(tb testing.TB, size int64) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: loop-mounting XFS needs root")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		tb.Skip("skipping: mkfs.xfs not found; apt-get install xfsprogs")
	}
	img := filepath.Join(tb.TempDir(), "xfs.img")
	if err := CreateSparse(img, size); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		tb.Skipf("skipping: mkfs.xfs: %v: %s", err, out)
	}
	mnt := tb.TempDir()
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		tb.Skipf("skipping: no loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	tb.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			tb.Errorf("detaching %s: %v: %s", dev, err, out)
		}
	})
	if out, err := exec.Command("mount", "-t", "xfs", dev, mnt).CombinedOutput(); err != nil {
		tb.Skipf("skipping: mounting XFS: %v: %s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			tb.Errorf("unmounting %s: %v: %s", mnt, err, out)
			// Still busy (a leaked fd): detach now, unmount when it closes.
			exec.Command("umount", "--lazy", mnt).Run()
		}
	})
	return mnt
}
