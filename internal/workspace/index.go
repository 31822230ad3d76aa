package workspace

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

const gitlinkMode = "160000"

// indexEntry is one line of 'git ls-files -s': a path at a merge stage.
type indexEntry struct {
	mode, sha, stage, path string
}

// index reads the repository's index.
func (r Repo) index(ctx context.Context) ([]indexEntry, error) {
	out, err := git(ctx, r.Root, nil, "ls-files", "-s", "-z")
	if err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", r.Root, err)
	}
	var entries []indexEntry
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, path, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("reading the index of %s: unexpected ls-files line %q", r.Root, rec)
		}
		entries = append(entries, indexEntry{mode: f[0], sha: f[1], stage: f[2], path: path})
	}
	return entries, nil
}

// indexInfo formats entries for 'git update-index -z --index-info'.
func indexInfo(entries []indexEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %s %s\t%s\x00", e.mode, e.sha, e.stage, e.path)
	}
	return b.Bytes()
}
