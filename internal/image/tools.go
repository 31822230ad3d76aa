package image

import (
	"context"
	"path"
	"slices"

	"banger/internal/ext4"
)

// KnownTools are the devbox tools banger's next steps use, in the order
// they are shown. The devbox build installs them into /usr/local/bin (or
// links them there once installed), so their presence there is what a
// VM of the image can run.
var KnownTools = []string{"mise", "opencode", "claude", "pi"}

var toolDirs = []string{"/usr/local/bin", "/usr/bin", "/bin"}

// DetectTools lists which of KnownTools rootfs (an ext4 image) holds. The
// result is never nil: an empty list means none. A link counts without
// being followed: the devbox links a tool only after installing it, and
// its target may live on the work disk.
func DetectTools(ctx context.Context, rootfs string) ([]string, error) {
	out := []string{}
	for _, tool := range KnownTools {
		for _, dir := range toolDirs {
			ok, err := ext4.Exists(ctx, rootfs, path.Join(dir, tool))
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, tool)
				break
			}
		}
	}
	return out, nil
}

// MissingTools lists which of KnownTools are not in have.
func MissingTools(have []string) []string {
	var out []string
	for _, t := range KnownTools {
		if !slices.Contains(have, t) {
			out = append(out, t)
		}
	}
	return out
}
