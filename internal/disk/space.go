package disk

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Available returns the bytes available to unprivileged users on the
// filesystem holding dir.
func Available(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("checking free space in %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// KeepFree is the disk space a large write (an image build, a download)
// leaves to everyone else on a filesystem with free bytes available.
func KeepFree(free int64) int64 { return min(1<<30, free/10) }
