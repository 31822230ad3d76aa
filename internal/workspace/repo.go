package workspace

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"banger/api/errdefs"
)

// Repo is a git work tree on the host.
type Repo struct {
	Root   string // absolute top-level directory of the work tree
	Head   string // commit of HEAD; "" on an unborn branch
	Branch string // short name of the current branch; "" when HEAD is detached
}

// Open finds the work tree enclosing path (a directory or a file in it).
func Open(ctx context.Context, path string) (Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Repo{}, fmt.Errorf("resolving %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Repo{}, errdefs.NotFound("%s does not exist; pass the path of a git checkout", abs)
	}
	if !fi.IsDir() {
		abs = filepath.Dir(abs)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return Repo{}, errdefs.Unavailable("git is not installed on this host; install it (apt-get install git)")
	}
	out, err := git(ctx, abs, nil, "rev-parse", "--show-toplevel")
	if err != nil {
		return Repo{}, errdefs.Invalid("%s is not inside a git work tree; run this from a checkout or pass its path", abs)
	}
	r := Repo{Root: strings.TrimSpace(string(out))}
	if head, err := git(ctx, r.Root, nil, "rev-parse", "-q", "--verify", "HEAD^{commit}"); err == nil {
		r.Head = strings.TrimSpace(string(head))
	}
	if br, err := git(ctx, r.Root, nil, "symbolic-ref", "-q", "--short", "HEAD"); err == nil {
		r.Branch = strings.TrimSpace(string(br))
	}
	return r, nil
}

// ResolveCommit turns a commit-ish of the host repository into a commit ID.
func (r Repo) ResolveCommit(ctx context.Context, ref string) (string, error) {
	out, err := git(ctx, r.Root, nil, "rev-parse", "-q", "--verify", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return "", errdefs.Invalid("%q does not name a commit in %s; pass a branch, tag or commit with --from", ref, r.Root)
	}
	return strings.TrimSpace(string(out)), nil
}

// HasSubmodules reports whether the repository uses submodules (a
// .gitmodules file, or gitlink entries in the index).
func (r Repo) HasSubmodules(ctx context.Context) (bool, error) {
	if _, err := os.Lstat(filepath.Join(r.Root, ".gitmodules")); err == nil {
		return true, nil
	}
	entries, err := r.index(ctx)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.mode == gitlinkMode {
			return true, nil
		}
	}
	return false, nil
}

// CommonDir is the git directory the work tree shares with the others of
// its repository, absolute with symlinks evaluated: the main checkout's
// ".git" for a linked work tree (git worktree add), where its refs and
// objects are; the work tree's own git directory otherwise.
func (r Repo) CommonDir(ctx context.Context) (string, error) {
	out, err := git(ctx, r.Root, nil, "rev-parse", "--git-common-dir")
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(r.Root, dir)
	}
	return filepath.EvalSymlinks(dir)
}

// gitDir is the repository's git directory (".git" of a plain checkout).
func (r Repo) gitDir(ctx context.Context) (string, error) {
	out, err := git(ctx, r.Root, nil, "rev-parse", "--absolute-git-dir")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// git runs git in dir with a clean environment: variables such as GIT_DIR
// from the caller's environment must not redirect it.
func git(ctx context.Context, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.Bytes(), fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}

// gitPipe runs from | to, two git commands joined by a pipe.
func gitPipe(ctx context.Context, from, to []string, fromDir, toDir string, stdin io.Reader) error {
	src := exec.CommandContext(ctx, "git", append([]string{"-C", fromDir}, from...)...)
	dst := exec.CommandContext(ctx, "git", append([]string{"-C", toDir}, to...)...)
	src.Env, dst.Env = gitEnv(), gitEnv()
	src.Stdin = stdin
	var serr, derr bytes.Buffer
	src.Stderr, dst.Stderr = &serr, &derr
	pipe, err := src.StdoutPipe()
	if err != nil {
		return err
	}
	dst.Stdin = pipe
	if err := src.Start(); err != nil {
		return fmt.Errorf("starting git %s: %w", from[0], err)
	}
	if err := dst.Run(); err != nil {
		src.Process.Kill()
		src.Wait()
		return fmt.Errorf("git %s: %v: %s", to[0], err, strings.TrimSpace(derr.String()))
	}
	if err := src.Wait(); err != nil {
		return fmt.Errorf("git %s: %v: %s", from[0], err, strings.TrimSpace(serr.String()))
	}
	return nil
}

func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}
