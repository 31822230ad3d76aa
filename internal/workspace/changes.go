package workspace

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// CheckoutMarker is the file in the streamed .git that tells
// FinalizeScript to check index entries out in the guest. It lists them,
// NUL separated: the index paths that the stream does not carry and that
// the host's work tree has.
const CheckoutMarker = "banger-checkout"

// checkoutList is the index paths (merged ones) that are neither sent nor
// deleted.
func checkoutList(index []indexEntry, sent []entry, deleted []string) []string {
	skip := make(map[string]bool, len(sent)+len(deleted))
	for _, e := range sent {
		skip[e.name] = true
	}
	for _, d := range deleted {
		skip[d] = true
	}
	var out []string
	for _, e := range index {
		if e.stage == "0" && !skip[e.path] {
			out = append(out, e.path)
		}
	}
	return out
}

// changedEntries lists what a checkout of the index would not reproduce:
// files whose content may differ from their index entry (git diff-files,
// which errs on the side of listing stat-only changes), and untracked
// files that are not ignored. It also returns the index paths missing
// from the work tree.
func changedEntries(ctx context.Context, r Repo) ([]entry, []string, error) {
	diff, err := git(ctx, r.Root, nil, "diff-files", "-z", "--name-only")
	if err != nil {
		return nil, nil, fmt.Errorf("comparing the work tree of %s with its index: %w", r.Root, err)
	}
	t := newTree(r.Root)
	var deleted []string
	for _, name := range splitZ(diff) {
		_, ok, err := t.present(name)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			deleted = append(deleted, name)
			continue
		}
		if err := t.addFile(name); err != nil {
			return nil, nil, err
		}
	}
	if err := addUntracked(ctx, r, t); err != nil {
		return nil, nil, err
	}
	return t.sorted(), deleted, nil
}

// addUntracked adds the untracked files that are not ignored.
func addUntracked(ctx context.Context, r Repo, t *tree) error {
	out, err := git(ctx, r.Root, nil, "ls-files", "-z", "--others", "--exclude-standard")
	if err != nil {
		return fmt.Errorf("listing the untracked files of %s: %w", r.Root, err)
	}
	for _, name := range splitZ(out) {
		if dir, ok := strings.CutSuffix(name, "/"); ok {
			// An untracked repository nested in the work tree: git shows
			// the directory, so it goes as a whole.
			if err := t.walk(dir); err != nil {
				return err
			}
			continue
		}
		if err := t.addFile(name); err != nil {
			return err
		}
	}
	return nil
}

// conversionAttrs change bytes between the repository and the work tree.
var conversionAttrs = []string{"filter", "eol", "text", "crlf", "ident", "working-tree-encoding"}

// checkoutExact reports whether checking out the index elsewhere writes
// the bytes the host's work tree holds: no clean/smudge filters (git-lfs),
// no end-of-line or encoding conversion, by attribute or configuration.
func checkoutExact(ctx context.Context, r Repo, index []indexEntry) (bool, error) {
	for _, key := range []string{"core.autocrlf", "core.eol"} {
		if v, err := git(ctx, r.Root, nil, "config", "--get", key); err == nil {
			if s := strings.TrimSpace(string(v)); s != "" && s != "false" {
				return false, nil
			}
		}
	}
	var files bytes.Buffer
	for _, e := range index {
		files.WriteString(e.path + "\x00")
	}
	args := append([]string{"check-attr", "-z", "--stdin"}, conversionAttrs...)
	out, err := git(ctx, r.Root, &files, args...)
	if err != nil {
		return false, fmt.Errorf("reading git attributes of %s: %w", r.Root, err)
	}
	// Records of three fields: path, attribute, value.
	f := splitZ(out)
	for i := 2; i < len(f); i += 3 {
		if f[i] != "unspecified" {
			return false, nil
		}
	}
	return true, nil
}

func splitZ(b []byte) []string {
	var out []string
	for _, rec := range bytes.Split(b, []byte{0}) {
		if len(rec) > 0 {
			out = append(out, string(rec))
		}
	}
	return out
}
