package ext4

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

var (
	statSize    = regexp.MustCompile(`\bSize: ([0-9]+)`)
	statRegular = regexp.MustCompile(`\bType: regular\b`)
)

// ReadFileLimit is ReadFile for a file that must be a regular file of at
// most max bytes: an image's content is not trusted, so a file that is
// larger (or a device, a directory, a link) is refused before it is read.
// A missing file is fs.ErrNotExist.
func ReadFileLimit(ctx context.Context, image, p string, max int64) ([]byte, error) {
	st, err := debugfs(ctx, image, false, "stat "+quote(p))
	if err != nil {
		if statNotFound(err) {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, err
	}
	if !statRegular.MatchString(st) {
		return nil, fmt.Errorf("%s in %s is not a regular file", p, image)
	}
	m := statSize.FindStringSubmatch(st)
	if m == nil {
		return nil, fmt.Errorf("%s in %s: debugfs gave no size", p, image)
	}
	if n, err := strconv.ParseInt(m[1], 10, 64); err != nil || n > max {
		return nil, fmt.Errorf("%s in %s is %s bytes, more than the %d it may hold", p, image, m[1], max)
	}
	out, err := debugfs(ctx, image, false, "cat "+quote(p))
	if int64(len(out)) > max {
		return nil, fmt.Errorf("%s in %s is more than the %d bytes it may hold", p, image, max)
	}
	return []byte(out), err
}

func statNotFound(err error) bool { return strings.Contains(err.Error(), "File not found") }
