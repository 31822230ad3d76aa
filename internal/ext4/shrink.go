package ext4

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Shrink makes the filesystem at path as small as its content allows
// plus headroom bytes, and truncates the file to match. Grow undoes it,
// so a seed image shrunk here grows to whatever size a VM asks for.
func Shrink(ctx context.Context, path string, headroom int64) error {
	if err := Check(ctx, path); err != nil {
		return err
	}
	if _, err := run(ctx, "resize2fs", "-M", path); err != nil {
		return fmt.Errorf("shrinking %s: %w", path, err)
	}
	blocks, blockSize, err := geometry(ctx, path)
	if err != nil {
		return err
	}
	size := blocks * blockSize
	if headroom > 0 {
		want := (size + headroom + blockSize - 1) / blockSize * blockSize
		if err := os.Truncate(path, want); err != nil {
			return fmt.Errorf("resizing %s: %w", path, err)
		}
		if _, err := run(ctx, "resize2fs", path, strconv.FormatInt(want/1024, 10)+"K"); err != nil {
			return fmt.Errorf("resizing %s: %w", path, err)
		}
		size = want
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("truncating %s: %w", path, err)
	}
	return nil
}

// geometry reads the block count and block size from the superblock.
func geometry(ctx context.Context, path string) (blocks, blockSize int64, err error) {
	out, err := run(ctx, "dumpe2fs", "-h", path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the superblock of %s: %w", path, err)
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch strings.TrimSpace(k) {
		case "Block count":
			blocks, err = n, perr
		case "Block size":
			blockSize, err = n, perr
		}
		if err != nil {
			return 0, 0, fmt.Errorf("reading the superblock of %s: %q: %w", path, line, err)
		}
	}
	if blocks == 0 || blockSize == 0 {
		return 0, 0, fmt.Errorf("reading the superblock of %s: no block count or size", path)
	}
	return blocks, blockSize, nil
}
