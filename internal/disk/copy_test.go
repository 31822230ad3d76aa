package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"banger/api"
	"banger/internal/progress"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

func TestCopySparse(t *testing.T) {
	tests := []struct {
		name string
		segs []segment
	}{
		{"empty", nil},
		{"only a hole", []segment{{hole, 3 * mib}}},
		{"only zeros", []segment{{zeroed, 2 * mib}}},
		{"data with unaligned end", []segment{{random, 100_000}}},
		{"holes at start, middle and end", []segment{
			{hole, mib}, {random, 256 * kib}, {hole, 2 * mib}, {zeroed, 128 * kib},
			{random, 64 * kib}, {hole, mib},
		}},
		{"zeros inside one data extent", []segment{
			{random, 64 * kib}, {zeroed, 64 * kib}, {random, 64 * kib}, {zeroed, 3 * mib}, {random, 5000},
		}},
		{"data spanning chunks", []segment{{random, 3*mib + 12*kib}, {hole, 64 * kib}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			writeLayout(t, src, tt.segs)

			m, err := Copy(context.Background(), src, dst, WithoutReflink())
			if err != nil {
				t.Fatal(err)
			}
			if m != Sparse {
				t.Errorf("method = %q, want %q", m, Sparse)
			}
			if got, want := digest(t, dst), digest(t, src); got != want {
				t.Errorf("dst sha256 = %s, want %s", got, want)
			}
			srcSize, srcAlloc, err := Usage(src)
			if err != nil {
				t.Fatal(err)
			}
			dstSize, dstAlloc, err := Usage(dst)
			if err != nil {
				t.Fatal(err)
			}
			if dstSize != srcSize {
				t.Errorf("dst size = %d, want %d", dstSize, srcSize)
			}
			if dstAlloc > srcAlloc {
				t.Errorf("dst allocated = %d, want at most src's %d", dstAlloc, srcAlloc)
			}
			// Zeroed segments must have become holes: data only where random was.
			if diff := cmp.Diff(randomSpans(tt.segs), dataSpans(t, dst)); diff != "" {
				t.Errorf("dst data spans (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCopyKeepsMode(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeLayout(t, src, []segment{{random, 10 * kib}})
	// 0666 would be trimmed by the usual umask if Copy relied on it.
	if err := os.Chmod(src, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), fs.FileMode(0o666); got != want {
		t.Errorf("dst mode = %v, want %v", got, want)
	}
}

// On ext4 FICLONE is unsupported, so the default Copy must fall back.
func TestCopyFallsBackToSparse(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("skipping: temp dir %s is not ext4 (magic %#x)", dir, st.Type)
	}
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeLayout(t, src, []segment{{hole, mib}, {random, mib}})
	m, err := Copy(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if m != Sparse {
		t.Errorf("method = %q, want %q", m, Sparse)
	}
	if got, want := digest(t, dst), digest(t, src); got != want {
		t.Errorf("dst sha256 = %s, want %s", got, want)
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, src, dst string)
		wantErr string
		wantIs  error
		dstKept bool // dst existed before and must be untouched
	}{
		{
			name:    "dst exists",
			setup:   func(t *testing.T, src, dst string) { write(t, dst, "keep me") },
			wantErr: "file exists", wantIs: fs.ErrExist, dstKept: true,
		},
		{
			name:    "src missing",
			setup:   func(t *testing.T, src, dst string) { os.Remove(src) },
			wantErr: "no such file", wantIs: fs.ErrNotExist,
		},
		{
			name:    "src is a directory",
			setup:   func(t *testing.T, src, dst string) { replace(t, src, func() error { return os.Mkdir(src, 0o755) }) },
			wantErr: "is a directory, not a regular file",
		},
		{
			// Must fail at once, not block waiting for a writer.
			name:    "src is a FIFO",
			setup:   func(t *testing.T, src, dst string) { replace(t, src, func() error { return unix.Mkfifo(src, 0o644) }) },
			wantErr: "is a named pipe (FIFO), not a regular file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			writeLayout(t, src, []segment{{random, 64 * kib}})
			tt.setup(t, src, dst)
			var before string
			if fi, err := os.Stat(src); err == nil && fi.Mode().IsRegular() {
				before = digest(t, src)
			}

			_, err := Copy(context.Background(), src, dst)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Copy error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "copying "+src+" to "+dst+": ") {
				t.Errorf("Copy error = %q, want it to name both paths", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Copy error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if before != "" && digest(t, src) != before {
				t.Errorf("src changed")
			}
			if tt.dstKept {
				if got, _ := os.ReadFile(dst); string(got) != "keep me" {
					t.Errorf("dst = %q, want it untouched", got)
				}
			} else if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dst left behind: Lstat error = %v", err)
			}
		})
	}
}

func TestCopyCanceled(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	var segs []segment
	for range 32 {
		segs = append(segs, segment{hole, mib}, segment{random, mib})
	}
	writeLayout(t, src, segs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The counter's first Add always emits, so this cancels after one chunk.
	c := progress.NewCounter(func(api.Event) { cancel() }, "copy", "src", 0)
	_, err := Copy(ctx, src, dst, WithoutReflink(), WithProgress(c))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Copy error = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dst left behind after cancel: Lstat error = %v", err)
	}
}

func TestCopyProgress(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	segs := []segment{{hole, 4 * mib}, {random, 3 * mib}, {zeroed, mib}, {hole, 2 * mib}, {random, 1000}}
	writeLayout(t, src, segs)
	total, err := DataSize(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := 4*mib + 1000; total != want {
		t.Errorf("DataSize = %d, want %d", total, want)
	}
	var last api.Event
	c := progress.NewCounter(func(ev api.Event) { last = ev }, "copy", "src", total)
	if _, err := Copy(context.Background(), src, dst, WithoutReflink(), WithProgress(c)); err != nil {
		t.Fatal(err)
	}
	c.Done()
	want := api.Event{Step: "copy", Item: "src", Current: total, Total: total, Done: true}
	last.Time = want.Time
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("final event (-want +got):\n%s", diff)
	}
}

func TestCreateSparse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := CreateSparse(path, 1<<30); err != nil {
		t.Fatal(err)
	}
	apparent, allocated, err := Usage(path)
	if err != nil {
		t.Fatal(err)
	}
	if apparent != 1<<30 || allocated != 0 {
		t.Errorf("Usage = %d, %d; want %d, 0", apparent, allocated, 1<<30)
	}
	if err := CreateSparse(path, 1); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateSparse over an existing file: error = %v, want fs.ErrExist", err)
	}
	if err := CreateSparse(path+"2", -1); err == nil {
		t.Errorf("CreateSparse with negative size: no error")
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace removes path and calls mk to put something else there.
func replace(t *testing.T, path string, mk func() error) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := mk(); err != nil {
		t.Fatal(err)
	}
}
