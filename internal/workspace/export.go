package workspace

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"banger/api/errdefs"
)

// BaseMarker is the file in the guest's .git that records the commit a
// workspace started at (the host's HEAD, or --from with --branch). Export
// sends only what the guest added on top of it, and refuses a guest whose
// HEAD no longer descends from it.
const BaseMarker = "banger-base"

// Exit codes of ExportScript that are answers rather than failures.
const (
	ExportNoGit     = 3 // git is not installed in the guest
	ExportNoRepo    = 4 // the path is not a git checkout
	ExportRewritten = 5 // HEAD no longer descends from the base
	ExportNothing   = 6 // no commits and no changes since the base
)

// ExportScript runs in the guest (sh -c). Its arguments are
//
//	checkout name email
//
// It snapshots the checkout without changing it: the work tree (tracked
// files as they are, untracked ones that are not ignored) is added to a
// copy of the index (GIT_INDEX_FILE) and, when it differs from HEAD,
// committed on top of HEAD with git commit-tree; the new objects go to a
// scratch object directory (GIT_OBJECT_DIRECTORY, the checkout's own
// objects as an alternate), and the bundle is made from a scratch git
// directory holding one ref. So the checkout's index, HEAD, refs, stash,
// files and object store stay exactly as they were. name and email are
// the identity of that snapshot commit when the guest has none.
//
// The bundle holds what HEAD (and the snapshot) add to the base commit
// (BaseMarker, else the shallow boundary of an older shallow workspace,
// else everything), so the host, which has the base, can fetch it. It is
// written in a scratch directory that the caller removes; the script
// prints "key value" lines: dir, bundle, base, head, tip, commits.
const ExportScript = `set -eu
repo=$1 name=$2 email=$3
if ! command -v git >/dev/null 2>&1; then
	echo "git is not installed in the guest; workspace export needs git there (install it in the image)" >&2
	exit 3
fi
if [ ! -d "$repo" ] || ! top=$(git -C "$repo" rev-parse --show-toplevel 2>/dev/null); then
	echo "$repo is not a git checkout in the guest" >&2
	exit 4
fi
cd "$top"
gd=$(git rev-parse --absolute-git-dir)
common=$(cd "$(git rev-parse --git-common-dir)" && pwd)
head=$(git rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null || true)
if [ -f "$gd/` + BaseMarker + `" ]; then
	cands=$(cat "$gd/` + BaseMarker + `")
elif [ -f "$common/shallow" ]; then
	cands=$(cat "$common/shallow")
else
	cands=
fi
base=
for c in $cands; do
	if [ -n "$head" ] && git merge-base --is-ancestor "$c" "$head" 2>/dev/null; then base=$c; break; fi
done
if [ -n "$cands" ] && [ -z "$base" ]; then
	echo "HEAD ($head) no longer descends from the commit the workspace started at ($(echo $cands | tr ' ' ',')): its history was rewritten (reset, rebase or amend)" >&2
	exit 5
fi
tmp=$(mktemp -d)
ok=
trap '[ -n "$ok" ] || rm -rf "$tmp"' EXIT
mkdir "$tmp/objects"
if [ -f "$gd/index" ]; then cp "$gd/index" "$tmp/index"; fi
export GIT_INDEX_FILE="$tmp/index" GIT_OBJECT_DIRECTORY="$tmp/objects" GIT_ALTERNATE_OBJECT_DIRECTORIES="$common/objects"
g() { git -c core.splitIndex=false -c core.fsmonitor=false -c gc.auto=0 -c maintenance.auto=false "$@"; }
g add -A -- .
tree=$(g write-tree)
tip=$head
if [ -z "$head" ] || [ "$tree" != "$(git rev-parse "$head^{tree}")" ]; then
	if [ -z "$head" ] && [ -z "$(g ls-files)" ]; then
		echo "nothing to export: $top has no commits and no files" >&2
		exit 6
	fi
	if ! git var GIT_COMMITTER_IDENT >/dev/null 2>&1; then
		export GIT_AUTHOR_NAME="$name" GIT_AUTHOR_EMAIL="$email" GIT_COMMITTER_NAME="$name" GIT_COMMITTER_EMAIL="$email"
	fi
	tip=$(g commit-tree "$tree" ${head:+-p "$head"} -m "Uncommitted changes in $top

Made by banger vm workspace export from the work tree and index, which
stay as they are in the guest.")
fi
if [ -n "$base" ] && [ "$tip" = "$base" ]; then
	echo "nothing to export: $top has no commits since $base and no uncommitted changes" >&2
	exit 6
fi
git init -q --bare --template= "$tmp/git"
if [ -f "$common/shallow" ]; then cp "$common/shallow" "$tmp/git/shallow"; fi
GIT_DIR="$tmp/git" git update-ref refs/heads/export "$tip"
GIT_DIR="$tmp/git" g bundle create "$tmp/bundle" refs/heads/export ${base:+"^$base"} 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
commits=0
if [ -n "$head" ]; then commits=$(git rev-list --count "$head" ${base:+"^$base"}); fi
echo "dir $tmp"
echo "bundle $tmp/bundle"
echo "base $base"
echo "head $head"
echo "tip $tip"
echo "commits $commits"
ok=1
`

// ExportArgv is the guest command line that runs ExportScript.
func ExportArgv(checkout, name, email string) []string {
	return []string{"sh", "-c", ExportScript, "banger-export", checkout, name, email}
}

// Snapshot is what ExportScript reports.
type Snapshot struct {
	Dir, Bundle string // guest scratch directory, and the bundle in it
	Base        string // the commit the export starts from; "" for all
	Head        string // the guest's HEAD; "" on an unborn branch
	Tip         string // the commit exported: Head, or a snapshot on top
	Commits     int    // commits from Base to Head
}

// Uncommitted reports whether Tip is a snapshot of uncommitted work.
func (s Snapshot) Uncommitted() bool { return s.Tip != s.Head }

var (
	objectID   = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
	guestTemp  = regexp.MustCompile(`^/[A-Za-z0-9._/-]{1,200}$`)
	maxCommits = 1 << 30
)

// ParseSnapshot reads ExportScript's output, which comes from the guest
// and is checked as such.
func ParseSnapshot(out string) (Snapshot, error) {
	var s Snapshot
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		key, value, _ := strings.Cut(line, " ")
		seen[key] = true
		switch key {
		case "dir":
			s.Dir = value
		case "bundle":
			s.Bundle = value
		case "base":
			s.Base = value
		case "head":
			s.Head = value
		case "tip":
			s.Tip = value
		case "commits":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > maxCommits {
				return Snapshot{}, fmt.Errorf("guest export: bad commit count %q", trim(value))
			}
			s.Commits = n
		}
	}
	for _, k := range []string{"dir", "bundle", "base", "head", "tip", "commits"} {
		if !seen[k] {
			return Snapshot{}, fmt.Errorf("guest export: no %s in its report", k)
		}
	}
	for _, id := range []string{s.Base, s.Head, s.Tip} {
		if id != "" && !objectID.MatchString(id) {
			return Snapshot{}, fmt.Errorf("guest export: %q is not a commit ID", trim(id))
		}
	}
	if s.Tip == "" {
		return Snapshot{}, fmt.Errorf("guest export: no commit to export")
	}
	if !guestTemp.MatchString(s.Dir) || strings.Contains(s.Dir, "..") || s.Bundle != s.Dir+"/bundle" {
		return Snapshot{}, fmt.Errorf("guest export: unexpected scratch path %q", trim(s.Dir))
	}
	return s, nil
}

func trim(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// Identity is the host repository's committer name and email, used for a
// snapshot commit when the guest has no identity of its own.
func (r Repo) Identity(ctx context.Context) (name, email string) {
	name, email = "banger", "banger@localhost"
	out, err := git(ctx, r.Root, nil, "var", "GIT_COMMITTER_IDENT")
	if err != nil {
		return name, email
	}
	// "Name <email> 1700000000 +0000"
	ident := strings.TrimSpace(string(out))
	if i, j := strings.IndexByte(ident, '<'), strings.IndexByte(ident, '>'); i > 0 && j > i {
		name, email = strings.TrimSpace(ident[:i]), ident[i+1:j]
	}
	return name, email
}

// CheckExportBranch refuses a branch that exists (unless force) or that
// a work tree of the repository has checked out (always: updating it
// would change that work tree's HEAD under it). It returns the branch's
// current commit, "" when it does not exist.
func (r Repo) CheckExportBranch(ctx context.Context, branch string, force bool) (string, error) {
	if err := CheckBranch(ctx, branch); err != nil {
		return "", err
	}
	ref := "refs/heads/" + branch
	out, _ := git(ctx, r.Root, nil, "worktree", "list", "--porcelain")
	dir := ""
	for _, line := range strings.Split(string(out), "\n") {
		if d, ok := strings.CutPrefix(line, "worktree "); ok {
			dir = d
		}
		if line == "branch "+ref {
			return "", errdefs.Conflict("branch %s is checked out in %s; export to another branch with --branch", branch, dir)
		}
	}
	old, err := git(ctx, r.Root, nil, "rev-parse", "-q", "--verify", ref)
	if err != nil {
		return "", nil
	}
	cur := strings.TrimSpace(string(old))
	if !force {
		return "", errdefs.Conflict("branch %s already exists in %s (at %s); pass --force to replace it, or --branch to pick another name", branch, r.Root, cur[:min(12, len(cur))])
	}
	return cur, nil
}

// ImportBundle fetches the bundle's objects into the repository, checks
// it holds snap.Tip, and points branch at it; old is the branch's
// current commit ("" when it must not exist yet), so a branch that
// changed meanwhile is left alone. Neither the work tree, the index nor
// HEAD change, and FETCH_HEAD is not written.
func (r Repo) ImportBundle(ctx context.Context, bundle string, snap Snapshot, branch, old, vm string) error {
	heads, err := git(ctx, r.Root, nil, "bundle", "list-heads", bundle)
	if err != nil {
		return fmt.Errorf("reading the bundle from the guest: %w", err)
	}
	if got := strings.TrimSpace(string(heads)); got != snap.Tip+" refs/heads/export" {
		return fmt.Errorf("the bundle from the guest holds %s, not the commit it reported (%s)", trim(got), snap.Tip)
	}
	if _, err := git(ctx, r.Root, nil, "-c", "gc.auto=0", "-c", "maintenance.auto=false",
		"fetch", "-q", "--no-tags", "--no-write-fetch-head", bundle, "refs/heads/export"); err != nil {
		if strings.Contains(err.Error(), "prerequisite") {
			return errdefs.Conflict("%s lacks the commit the guest's work starts from (%s); export into the repository the workspace was prepared from (--repo)", r.Root, snap.Base)
		}
		return fmt.Errorf("fetching the guest's work: %w", err)
	}
	msg := fmt.Sprintf("banger vm workspace export from %s", vm)
	if _, err := git(ctx, r.Root, nil, "update-ref", "-m", msg, "refs/heads/"+branch, snap.Tip, old); err != nil {
		return errdefs.Conflict("branch %s changed while exporting; try again: %v", branch, err)
	}
	return nil
}
