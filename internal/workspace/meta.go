package workspace

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// uploadPack lets the scratch repository fetch commits by ID whatever
// refs point at them (HEAD may be detached, --from may be any commit). It
// packs fast: no delta search among objects that are not already deltas
// in the host's packs (that search costs far more than the bytes it
// saves on a local link), and the quickest zlib level.
const uploadPack = "git -c uploadpack.allowAnySHA1InWant=true -c pack.window=0 -c pack.compression=1 upload-pack"

// shallowMeta builds, under scratch, a git directory that holds r's HEAD
// commit (and the extra commits) with a history of depth 1 (shallow) or
// their whole history (not shallow: ModeHistory), HEAD on the
// same branch as the host, r's remotes and upstream configuration, its
// info/exclude, and an index with the same entries as r's. It returns
// the git directory's path.
func shallowMeta(ctx context.Context, r Repo, scratch string, shallow bool, extra ...string) (string, error) {
	work := filepath.Join(scratch, "work")
	// An empty template: no sample hooks, no description.
	if _, err := git(ctx, scratch, nil, "-c", "init.defaultBranch=main", "init", "-q", "--template=", work); err != nil {
		return "", err
	}
	if err := fetchCommits(ctx, r, work, shallow, extra); err != nil {
		return "", err
	}
	if err := setHead(ctx, r, work); err != nil {
		return "", err
	}
	if err := copyConfig(ctx, r, work); err != nil {
		return "", err
	}
	if err := copyExclude(ctx, r, work); err != nil {
		return "", err
	}
	if err := copyIndex(ctx, r, work); err != nil {
		return "", err
	}
	gd := filepath.Join(work, ".git")
	os.Remove(filepath.Join(gd, "FETCH_HEAD"))
	return gd, nil
}

func fetchCommits(ctx context.Context, r Repo, work string, shallow bool, extra []string) error {
	var want []string
	for _, c := range append([]string{r.Head}, extra...) {
		if c != "" && !slices.Contains(want, c) {
			want = append(want, c)
		}
	}
	if len(want) == 0 {
		return nil // unborn branch: nothing to fetch
	}
	// No automatic gc or maintenance in the scratch repository.
	args := []string{"-c", "gc.auto=0", "-c", "maintenance.auto=false", "fetch", "-q", "--no-tags", "--upload-pack=" + uploadPack}
	what := "HEAD with its history"
	if shallow {
		args, what = append(args, "--depth=1"), "HEAD with depth 1"
	}
	if _, err := git(ctx, work, nil, append(append(args, r.Root), want...)...); err != nil {
		return fmt.Errorf("fetching %s: %w", what, err)
	}
	return nil
}

func setHead(ctx context.Context, r Repo, work string) error {
	var steps [][]string
	switch {
	case r.Branch != "" && r.Head != "":
		steps = [][]string{{"update-ref", "refs/heads/" + r.Branch, r.Head}, {"symbolic-ref", "HEAD", "refs/heads/" + r.Branch}}
	case r.Branch != "":
		steps = [][]string{{"symbolic-ref", "HEAD", "refs/heads/" + r.Branch}}
	case r.Head != "":
		steps = [][]string{{"update-ref", "--no-deref", "HEAD", r.Head}}
	}
	for _, args := range steps {
		if _, err := git(ctx, work, nil, args...); err != nil {
			return fmt.Errorf("setting HEAD: %w", err)
		}
	}
	return nil
}

// copyConfig copies the remotes and the current branch's upstream, so
// fetch, pull and push in the guest go where they go on the host.
func copyConfig(ctx context.Context, r Repo, work string) error {
	pattern := `^remote\.`
	if r.Branch != "" {
		pattern = `^(remote\.|branch\.` + regexp.QuoteMeta(r.Branch) + `\.)`
	}
	out, err := git(ctx, r.Root, nil, "config", "--local", "-z", "--get-regexp", pattern)
	if err != nil {
		return nil // exit status 1: nothing matches
	}
	for _, rec := range bytes.Split(out, []byte{0}) {
		key, value, _ := strings.Cut(string(rec), "\n")
		if key == "" {
			continue
		}
		if _, err := git(ctx, work, nil, "config", "--add", key, value); err != nil {
			return fmt.Errorf("copying git config %s: %w", key, err)
		}
	}
	return nil
}

func copyExclude(ctx context.Context, r Repo, work string) error {
	out, err := git(ctx, r.Root, nil, "rev-parse", "--path-format=absolute", "--git-path", "info/exclude")
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(strings.TrimSpace(string(out)))
	if err != nil {
		return nil // no exclude file
	}
	dir := filepath.Join(work, ".git", "info")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "exclude"), data, 0o644)
}

// copyIndex gives the scratch repository r's index entries (staged
// changes and merge stages included), fetching the blobs it lacks. The
// entries carry no stat data: the guest's first 'git status' compares
// contents once and refreshes them.
func copyIndex(ctx context.Context, r Repo, work string) error {
	entries, err := r.index(ctx)
	if err != nil || len(entries) == 0 {
		return err
	}
	var shas bytes.Buffer
	for _, e := range entries {
		if e.mode == gitlinkMode {
			return fmt.Errorf("%s is a submodule; use full_copy", e.path)
		}
		shas.WriteString(e.sha + "\n")
	}
	out, err := git(ctx, work, bytes.NewReader(shas.Bytes()), "cat-file", "--batch-check")
	if err != nil {
		return fmt.Errorf("checking index objects: %w", err)
	}
	var missing bytes.Buffer
	for _, line := range strings.Split(string(out), "\n") {
		if sha, ok := strings.CutSuffix(line, " missing"); ok {
			missing.WriteString(sha + "\n")
		}
	}
	if missing.Len() > 0 {
		err := gitPipe(ctx, []string{"pack-objects", "--stdout", "-q"}, []string{"index-pack", "--stdin"}, r.Root, work, &missing)
		if err != nil {
			return fmt.Errorf("copying staged objects: %w", err)
		}
	}
	if _, err := git(ctx, work, bytes.NewReader(indexInfo(entries)), "update-index", "-z", "--index-info"); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	return nil
}
