package mcpserver_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/mcpserver"
)

// gitRepo makes a git work tree with one commit at dir.
func gitRepo(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644)
	return dir
}

// hostTree is a directory of repositories: repo (with a subdirectory, a
// symlink to other and a sibling repo2 whose name it prefixes), other
// (another repository) and plain (no repository at all).
type hostTree struct {
	repo, sub, repo2, other, escape, plain string
}

func newHostTree(t *testing.T) hostTree {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := hostTree{
		repo:  gitRepo(t, filepath.Join(base, "repo")),
		repo2: gitRepo(t, filepath.Join(base, "repo2")),
		other: gitRepo(t, filepath.Join(base, "elsewhere", "other")),
		plain: filepath.Join(base, "plain"),
	}
	h.sub = filepath.Join(h.repo, "sub")
	h.escape = filepath.Join(h.repo, "escape")
	os.MkdirAll(h.sub, 0o755)
	os.MkdirAll(h.plain, 0o755)
	if err := os.Symlink(h.other, h.escape); err != nil {
		t.Fatal(err)
	}
	return h
}

// prepare asks for a workspace from hostPath into a fresh guest directory.
func prepare(t *testing.T, hostPath string) map[string]any {
	return map[string]any{"vm": "box", "host_path": hostPath, "guest_path": filepath.Join(t.TempDir(), "ws")}
}

// TestHostPathScope: by default the workspace tools may use only the git
// work tree banger mcp was started in; a path outside it, through "..",
// through a symlink, or a sibling its name prefixes is refused with the
// allowed roots and the flag that widens them, for prepare and export.
func TestHostPathScope(t *testing.T) {
	h := newHostTree(t)
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{WorkDir: h.sub})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)

	var ws struct {
		RepoPath string `json:"repo_path"`
	}
	a.must("workspace_prepare", prepare(t, h.sub), &ws)
	if ws.RepoPath != h.repo {
		t.Errorf("workspace_prepare from %s used the work tree %s; want %s", h.sub, ws.RepoPath, h.repo)
	}
	a.must("workspace_prepare", prepare(t, h.repo+"/sub/../"), nil)

	refusal := "is outside the host paths this MCP server may use: " + h.repo + "; use a path inside one of them, or ask the user to restart banger mcp with --allow-repo PATH (or --all-repos to allow any path)"
	for name, p := range map[string]string{
		"another repository": h.other,
		"dot-dot":            h.repo + "/../repo2",
		"symlink escape":     h.escape,
		"inside the symlink": filepath.Join(h.escape, "a.txt"),
		"prefix sibling":     h.repo2,
		"missing, outside":   filepath.Join(h.plain, "nope"),
	} {
		t.Logf("%s: %s", name, p)
		a.refused("workspace_prepare", prepare(t, p), `host_path "`+p+`"`)
		a.refused("workspace_prepare", prepare(t, p), refusal)
		a.refused("workspace_export", map[string]any{"vm": "box", "host_path": p, "guest_path": "/nonexistent", "branch": "x"}, refusal)
	}
	a.refused("workspace_prepare", prepare(t, h.escape), `host_path "`+h.escape+`" (`+h.other+`) is outside`)
	a.refused("workspace_prepare", prepare(t, filepath.Join(h.repo, "nope")), "does not exist")
	for _, p := range []string{h.repo2, h.other} {
		if out, err := exec.Command("git", "-C", p, "branch", "--list", "x").Output(); err != nil || len(out) != 0 {
			t.Errorf("a refused export left a branch in %s: %q, %v", p, out, err)
		}
	}
}

// TestHostPathScopeWidened: --allow-repo adds roots, a root inside a work
// tree does not open the rest of that tree, and --all-repos allows any
// path; the scope is shown to the agent.
func TestHostPathScopeWidened(t *testing.T) {
	h := newHostTree(t)
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{WorkDir: h.repo, Repos: []string{filepath.Dir(h.other)}})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	a.must("workspace_prepare", prepare(t, h.repo), nil)
	a.must("workspace_prepare", prepare(t, h.other), nil)
	a.must("workspace_prepare", prepare(t, h.escape), nil) // its target is allowed now
	a.refused("workspace_prepare", prepare(t, h.repo2), "may use: "+h.repo+", "+filepath.Dir(h.other)+";")
	want := "only git work trees inside " + h.repo + ", " + filepath.Dir(h.other)
	if got := a.cs.InitializeResult().Instructions; !strings.Contains(got, want) {
		t.Errorf("instructions %q do not show the scope %q", got, want)
	}
	tools, err := a.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if strings.HasPrefix(tool.Name, "workspace_") && !strings.Contains(tool.Description, want) {
			t.Errorf("%s's description %q does not show the scope", tool.Name, tool.Description)
		}
	}

	// A root inside a work tree: the tree reaches outside it, so no.
	b := w.connect(t, mcpserver.Scope{Repos: []string{h.sub}})
	b.refused("workspace_prepare", prepare(t, h.sub), "is in the git work tree "+h.repo+", which reaches outside the host paths this MCP server may use ("+h.sub+"); the user can allow the whole tree by restarting banger mcp with --allow-repo "+h.repo)

	all := w.connect(t, mcpserver.Scope{AllRepos: true})
	all.must("workspace_prepare", prepare(t, h.repo2), nil)
	if got := all.cs.InitializeResult().Instructions; !strings.Contains(got, "any host path (banger mcp was started with --all-repos)") {
		t.Errorf("instructions with --all-repos: %q", got)
	}

	if _, err := mcpserver.New(mcpserver.Options{StateDir: t.TempDir(), Scope: mcpserver.Scope{Name: "x", Repos: []string{filepath.Join(h.plain, "nope")}}}); err == nil ||
		!strings.Contains(err.Error(), `--allow-repo "`+filepath.Join(h.plain, "nope")+`"`) {
		t.Errorf("New with a missing --allow-repo: %v", err)
	}
}

// TestHostPathScopeOutsideRepo: started outside any git work tree and
// with no --allow-repo, the VM tools work and the workspace tools say why
// they refuse every path.
func TestHostPathScopeOutsideRepo(t *testing.T) {
	h := newHostTree(t)
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{WorkDir: h.plain})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	a.must("vm_exec", map[string]any{"vm": "box", "command": "true"}, nil)
	want := "banger mcp was started in " + h.plain + ", which is not inside a git work tree, and without --allow-repo; the user must restart it from inside a git checkout, or with --allow-repo PATH (--all-repos allows any path)"
	a.refused("workspace_prepare", prepare(t, h.repo), want)
	a.refused("workspace_export", map[string]any{"vm": "box", "host_path": h.repo}, want)
	if got := a.cs.InitializeResult().Instructions; !strings.Contains(got, "may use no host path (banger mcp was started in "+h.plain) {
		t.Errorf("instructions outside a repository: %q", got)
	}
}

// TestHostPathScopeLinkedWorkTree: a linked work tree (git worktree add)
// keeps its refs and objects in its main checkout's git directory, where
// a workspace reads and an export writes. One inside the scope whose
// main checkout is outside it is refused, naming that git directory;
// started in such a work tree, the server allows its own git directory.
func TestHostPathScopeLinkedWorkTree(t *testing.T) {
	h := newHostTree(t)
	linked := filepath.Join(h.repo, "linked")
	if out, err := exec.Command("git", "-C", h.other, "worktree", "add", "-q", linked).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add: %v\n%s", err, out)
	}
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{WorkDir: h.repo})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	gitDir := filepath.Join(h.other, ".git")
	a.refused("workspace_prepare", prepare(t, linked), "whose git directory "+gitDir+" (where a workspace reads and an export writes) is outside")
	a.refused("workspace_export", map[string]any{"vm": "box", "host_path": linked, "guest_path": "/nonexistent", "branch": "x"},
		"restarting banger mcp with --allow-repo "+h.other)
	if out, err := exec.Command("git", "-C", h.other, "branch", "--list", "x").Output(); err != nil || len(out) != 0 {
		t.Errorf("a refused export left a branch in %s: %q, %v", h.other, out, err)
	}

	// Started in the linked work tree itself: its git directory is the
	// user's choice.
	b := w.connect(t, mcpserver.Scope{WorkDir: linked})
	b.must("vm_create", map[string]any{"name": "box2", "disk_mib": 64}, nil)
	b.must("workspace_prepare", map[string]any{"vm": "box2", "host_path": linked, "guest_path": filepath.Join(t.TempDir(), "ws")}, nil)
}
