package mcpserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"banger/api/errdefs"
	"banger/internal/workspace"
)

// hostPaths is the part of a Scope that limits the host paths the
// workspace tools may read from (workspace_prepare) and write branches
// into (workspace_export): the work trees under its roots.
type hostPaths struct {
	// all allows any host path (--all-repos).
	all bool
	// roots are absolute directories with symlinks evaluated.
	roots []string
	// none says why roots is empty, for the tools' errors.
	none string
	// gitDirs are git directories allowed outside the roots: the one
	// the work tree banger mcp starts in shares, when it is a linked
	// work tree of a checkout elsewhere.
	gitDirs []string
}

// resolveHostPaths turns the scope's settings into roots, once, at start:
// the git work tree containing WorkDir (when it is in one) and each of
// Repos, symlinks evaluated. A Repos entry that is not a directory is an
// error; a WorkDir outside any work tree only leaves no default root.
func resolveHostPaths(ctx context.Context, sc Scope) (hostPaths, error) {
	hp := hostPaths{all: sc.AllRepos}
	var notRepo error
	if sc.WorkDir != "" {
		repo, err := openWorkTree(ctx, sc.WorkDir)
		if err == nil {
			hp.roots = append(hp.roots, repo.Root)
			if common, err := repo.CommonDir(ctx); err == nil && !hp.allows(common) {
				hp.gitDirs = append(hp.gitDirs, common)
			}
		}
		notRepo = err
	}
	for _, r := range sc.Repos {
		root, err := resolveDir(r)
		if err != nil {
			return hostPaths{}, allowRepoErr(r, err)
		}
		if !hp.allows(root) {
			hp.roots = append(hp.roots, root)
		}
	}
	if len(hp.roots) == 0 {
		switch {
		case sc.WorkDir == "":
			hp.none = "banger mcp was given no repository"
		case errdefs.KindOf(notRepo) == errdefs.KindInvalid:
			hp.none = fmt.Sprintf("banger mcp was started in %s, which is not inside a git work tree, and without --allow-repo", sc.WorkDir)
		default:
			hp.none = fmt.Sprintf("banger mcp was started in %s, whose git work tree could not be found (%v), and without --allow-repo", sc.WorkDir, notRepo)
		}
	}
	return hp, nil
}

func allowRepoErr(dir string, err error) error {
	return errdefs.Invalid("--allow-repo %q: %v; give an existing directory", dir, err)
}

// openWorkTree opens the git work tree containing dir, its Root with
// symlinks evaluated.
func openWorkTree(ctx context.Context, dir string) (workspace.Repo, error) {
	repo, err := workspace.Open(ctx, dir)
	if err != nil {
		return workspace.Repo{}, err
	}
	repo.Root, err = filepath.EvalSymlinks(repo.Root)
	return repo, err
}

// resolveDir makes dir absolute and evaluates its symlinks; it must be a
// directory.
func resolveDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(resolved); err != nil {
		return "", err
	} else if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", resolved)
	}
	return resolved, nil
}

// allows reports whether the clean absolute path p is one of the roots or
// inside one. Components are compared whole: /home/u/repo2 is not inside
// /home/u/repo.
func (hp hostPaths) allows(p string) bool {
	for _, root := range hp.roots {
		if p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
			return true
		}
	}
	return false
}

// describe says which host paths the workspace tools may use, for the
// agent.
func (hp hostPaths) describe() string {
	switch {
	case hp.all:
		return "any host path (banger mcp was started with --all-repos)"
	case len(hp.roots) == 0:
		return "no host path (" + hp.none + ")"
	}
	return "only git work trees inside " + strings.Join(hp.roots, ", ")
}

// check confines the absolute host path p to the scope and returns the
// path to use: p cleaned, with its symlinks evaluated, so a symlink or a
// ".." cannot lead out of a root, and the path checked is the path used.
// The git work tree containing it must be inside a root too, as the
// whole tree is what a workspace copies and an export writes into.
func (hp hostPaths) check(ctx context.Context, p string) (string, error) {
	if hp.all {
		return p, nil
	}
	if len(hp.roots) == 0 {
		return "", errdefs.Invalid("host_path %q refused: this MCP server may use no host path, as %s; "+
			"the user must restart it from inside a git checkout, or with --allow-repo PATH (--all-repos allows any path)", p, hp.none)
	}
	clean := filepath.Clean(p)
	resolved, err := filepath.EvalSymlinks(clean)
	if err != nil {
		if !hp.allows(clean) {
			return "", hp.outside(p, clean)
		}
		return "", errdefs.NotFound("host_path %q does not exist; give a directory of the git checkout", p)
	}
	if !hp.allows(resolved) {
		return "", hp.outside(p, resolved)
	}
	repo, err := openWorkTree(ctx, resolved)
	if err != nil {
		return "", err
	}
	root := repo.Root
	if !hp.allows(root) {
		return "", errdefs.Invalid("host_path %q is in the git work tree %s, which reaches outside the host paths this MCP server may use (%s); "+
			"the user can allow the whole tree by restarting banger mcp with --allow-repo %s", p, root, strings.Join(hp.roots, ", "), root)
	}
	// A prepare reads the repository's objects and refs, and an export
	// writes a branch, in the git directory the work tree shares: a
	// linked work tree's, or one a .git file names, may lie elsewhere.
	common, err := repo.CommonDir(ctx)
	if err != nil {
		return "", err
	}
	if !hp.allows(common) && !slices.Contains(hp.gitDirs, common) {
		checkout := common
		if filepath.Base(common) == ".git" {
			checkout = filepath.Dir(common)
		}
		return "", errdefs.Invalid("host_path %q is in the git work tree %s, whose git directory %s (where a workspace reads and an export writes) is outside the host paths this MCP server may use (%s); "+
			"the user can allow it by restarting banger mcp with --allow-repo %s", p, root, common, strings.Join(hp.roots, ", "), checkout)
	}
	return resolved, nil
}

func (hp hostPaths) outside(p, resolved string) error {
	what := fmt.Sprintf("%q", p)
	if resolved != p {
		what = fmt.Sprintf("%q (%s)", p, resolved)
	}
	return errdefs.Invalid("host_path %s is outside the host paths this MCP server may use: %s; "+
		"use a path inside one of them, or ask the user to restart banger mcp with --allow-repo PATH (or --all-repos to allow any path)",
		what, strings.Join(hp.roots, ", "))
}
