package workspace

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repo is a scratch git repository for tests.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	r := &repo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "test@example.com")
	r.git("config", "user.name", "Test")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	return runGit(r.t, r.dir, args...)
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "protocol.file.allow=always", "-C", dir}, args...)...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (r *repo) write(name, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	os.Chmod(p, mode)
}

func (r *repo) symlink(target, name string) {
	r.t.Helper()
	if err := os.Symlink(target, filepath.Join(r.dir, name)); err != nil {
		r.t.Fatal(err)
	}
}

// extract writes the plan's stream into a fresh directory with the host's
// tar, as the guest's copy_in would, and returns it.
func extract(t *testing.T, p *Plan) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteTar(&buf, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "staging")
	os.MkdirAll(dir, 0o755)
	cmd := exec.Command("tar", "-x", "-f", "-", "-C", dir)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	return dir
}

func newPlan(t *testing.T, opts Options) *Plan {
	t.Helper()
	p, err := NewPlan(context.Background(), opts)
	if err != nil {
		t.Fatalf("NewPlan(%+v): %v", opts, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// finalize runs FinalizeScript on this host, as the guest would.
func finalize(t *testing.T, f Finalize) (string, error) {
	t.Helper()
	argv := f.Argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// files lists every path under dir (slash-separated, sorted), with "/" after
// directories and "@target" after symlinks, skipping .git.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if rel == ".git" {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += "@" + target
		case d.IsDir():
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out
}
