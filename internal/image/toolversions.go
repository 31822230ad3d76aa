package image

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"banger/internal/ext4"
)

// ToolsRecord is where the devbox tools step records what it installed:
// one line per package, "tool version package sha512".
const ToolsRecord = "/usr/local/share/banger/devbox-tools"

// maxToolsRecord bounds what is read of an image's record: a few lines
// are expected, and the image is not trusted.
const maxToolsRecord = 16 << 10

var toolVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$`)

// DetectToolVersions reads the devbox record of rootfs: the version of
// each of KnownTools the build installed. An image without a record (not
// built with the devbox steps) gives an empty map. Lines that are not a
// known tool and a plain version are left out: the record comes from the
// guest.
func DetectToolVersions(ctx context.Context, rootfs string) (map[string]string, error) {
	b, err := ext4.ReadFileLimit(ctx, rootfs, ToolsRecord, maxToolsRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseToolsRecord(string(b)), nil
}

// ParseToolsRecord is DetectToolVersions on the record's content.
func ParseToolsRecord(record string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(record, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !slices.Contains(KnownTools, f[0]) || !toolVersion.MatchString(f[1]) {
			continue
		}
		out[f[0]] = f[1]
	}
	return out
}
