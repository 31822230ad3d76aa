package disk

import (
	"context"
	"path/filepath"
	"testing"

	"banger/api"
	"banger/internal/progress"
)

// TestCopyReflink needs root and xfsprogs; it skips, saying why, without.
func TestCopyReflink(t *testing.T) {
	mnt := mountXFS(t, 512*mib)
	src := filepath.Join(mnt, "src")
	writeLayout(t, src, []segment{{hole, mib}, {random, 8 * mib}, {zeroed, mib}, {hole, 4 * mib}, {random, 5000}})

	tests := []struct {
		name string
		opts []Option
		want Method
	}{
		{"default reflinks", nil, Reflink},
		{"WithoutReflink copies", []Option{WithoutReflink()}, Sparse},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(mnt, "dst"+string(rune('0'+i)))
			// Measured right before the copy: on XFS, preallocated extents
			// count as data once read into the page cache, as digest does.
			total, err := DataSize(src)
			if err != nil {
				t.Fatal(err)
			}
			var last api.Event
			c := progress.NewCounter(func(ev api.Event) { last = ev }, "copy", "src", total)
			m, err := Copy(context.Background(), src, dst, append(tt.opts, WithProgress(c))...)
			if err != nil {
				t.Fatal(err)
			}
			c.Done()
			if m != tt.want {
				t.Errorf("method = %q, want %q", m, tt.want)
			}
			if got, want := digest(t, dst), digest(t, src); got != want {
				t.Errorf("dst sha256 = %s, want %s", got, want)
			}
			if last.Current != total {
				t.Errorf("progress = %d bytes, want %d", last.Current, total)
			}
		})
	}
}
