//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/testutil/fixture"
)

// hostRepo is a git repository on the host for workspace tests.
type hostRepo struct {
	t   *testing.T
	dir string
}

func newHostRepo(t *testing.T) *hostRepo {
	t.Helper()
	r := &hostRepo{t: t, dir: filepath.Join(t.TempDir(), "My_App")}
	os.MkdirAll(r.dir, 0o755)
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "e2e@example.com")
	r.git("config", "user.name", "E2E")
	return r
}

func (r *hostRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "protocol.file.allow=always", "-C", r.dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (r *hostRepo) write(name, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	os.Chmod(p, mode)
}

// mixedRepo has two commits, then committed, modified, deleted, staged,
// untracked and ignored files and an executable.
func mixedRepo(t *testing.T) *hostRepo {
	r := newHostRepo(t)
	r.write("README.md", "v1\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "first")
	r.write("README.md", "hello\n", 0o644)
	r.write("src/main.go", "package main\n", 0o644)
	r.write("src/old.go", "package old\n", 0o644)
	r.write("tools/build.sh", "#!/bin/sh\necho build\n", 0o755)
	r.write("staged.txt", "v1\n", 0o644)
	r.write(".gitignore", "*.log\nnode_modules/\n", 0o644)
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "second: the one the guest gets")
	r.write("README.md", "hello, edited on the host\n", 0o644)
	os.Remove(filepath.Join(r.dir, "src/old.go"))
	r.write("staged.txt", "v2\n", 0o644)
	r.git("add", "staged.txt")
	r.write("notes/todo.txt", "untracked\n", 0o644)
	r.write("debug.log", "ignored\n", 0o644)
	r.write("node_modules/dep/index.js", "ignored\n", 0o644)
	return r
}

// TestRunWorkspace drives 'vm run' and 'vm workspace prepare' against a
// real guest: the guest tree and git's view of it match the host's, the
// bootstrap runs as a session, --branch/--from, --readonly and submodules.
func TestRunWorkspace(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	repo := mixedRepo(t)

	out := e.ok("vm", "run", repo.dir, "--image", "deb", "--branch", "work/e2e", "--from", "HEAD", "--json")
	var res struct {
		VM        api.VM        `json:"vm"`
		Workspace api.Workspace `json:"workspace"`
		Bootstrap *api.Session  `json:"bootstrap"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("vm run --json: %v\n%s", err, out)
	}
	name := res.VM.Name
	if !strings.HasPrefix(name, "my-app-") || res.VM.State != api.VMRunning {
		t.Errorf("vm run made %+v; want a running vm named after the repository (my-app-XXXX)", res.VM)
	}
	if res.Workspace.GuestPath != "/root/repo" || res.Workspace.Mode != api.WorkspaceShallow || res.Workspace.Branch != "work/e2e" {
		t.Errorf("workspace = %+v", res.Workspace)
	}
	if res.Bootstrap == nil || res.Bootstrap.Name != "bootstrap" {
		t.Errorf("bootstrap session = %+v", res.Bootstrap)
	}

	// The tree: tracked files as edited, no deleted or ignored ones,
	// untracked ones included, modes kept.
	tree := e.ssh(name, "cd /root/repo && find . -path ./.git -prune -o -printf '%p %m\\n' | sort")
	wantTree := strings.Join([]string{
		". 755", "./.gitignore 644", "./README.md 644", "./notes 755", "./notes/todo.txt 644", "./src 755",
		"./src/main.go 644", "./staged.txt 644", "./tools 755", "./tools/build.sh 755",
	}, "\n") + "\n"
	if tree != wantTree {
		t.Errorf("guest tree:\n%s\nwant:\n%s", tree, wantTree)
	}
	if got := e.ssh(name, "cat /root/repo/README.md"); got != "hello, edited on the host\n" {
		t.Errorf("README.md in the guest = %q", got)
	}
	// git's view: the same status, the same commit, a history of depth 1,
	// and the new branch.
	for _, c := range []struct {
		guest string
		host  []string
	}{
		{"git status --porcelain", []string{"status", "--porcelain"}},
		{"git log -1 --format='%H %s'", []string{"log", "-1", "--format=%H %s"}},
		{"git diff --cached --name-status", []string{"diff", "--cached", "--name-status"}},
	} {
		if got, want := e.ssh(name, "cd /root/repo && "+c.guest), repo.git(c.host...); got != want {
			t.Errorf("guest %s = %q; host says %q", c.guest, got, want)
		}
	}
	if got := e.ssh(name, "cd /root/repo && git rev-parse --is-shallow-repository && git rev-list --count HEAD && git branch --show-current"); got != "true\n1\nwork/e2e\n" {
		t.Errorf("guest shallow/depth/branch = %q; want true, 1, work/e2e", got)
	}

	// The bootstrap ran as a session; this image has no mise.
	boot := waitSessionDone(t, e, name, "bootstrap")
	if boot.Exit == nil || boot.Exit.Code != 0 {
		t.Errorf("bootstrap session = %+v; want exit 0", boot)
	}
	if logs := e.ok("vm", "session", "logs", name, "bootstrap"); !strings.Contains(logs, "mise is not installed") {
		t.Errorf("bootstrap logs = %q; want it to say mise is missing", logs)
	}
	if got := e.ssh(name, "cat /root/.cache/banger/bootstrap.log"); !strings.Contains(got, "mise is not installed") {
		t.Errorf("guest bootstrap.log = %q", got)
	}

	// --branch/--from another commit: git refuses while uncommitted
	// changes are in the way, as it would on the host...
	_, stderr, code := e.run("vm", "workspace", "prepare", name, repo.dir, "--guest-path", "/root/older", "--branch", "fix/old", "--from", "HEAD~1")
	if code == 0 || !strings.Contains(stderr, "could not create branch fix/old") || !strings.Contains(stderr, "README.md") {
		t.Errorf("branching a dirty tree from HEAD~1: exit %d, %q; want git's refusal naming README.md", code, stderr)
	}
	// ...and on a clean checkout the branch starts at the older commit.
	clean := newHostRepo(t)
	clean.write("a.txt", "1\n", 0o644)
	clean.git("add", "-A")
	clean.git("commit", "-q", "-m", "one")
	clean.write("a.txt", "2\n", 0o644)
	clean.git("commit", "-q", "-am", "two")
	e.ok("vm", "workspace", "prepare", name, clean.dir, "--guest-path", "/root/older", "--branch", "fix/old", "--from", "HEAD~1")
	got := e.ssh(name, "cd /root/older && git branch --show-current && git rev-parse HEAD && cat a.txt && git status --porcelain")
	if want := "fix/old\n" + clean.git("rev-parse", "HEAD~1") + "1\n"; got != want {
		t.Errorf("branch from HEAD~1: %q; want %q", got, want)
	}

	// Preparing again replaces the tree.
	e.ssh(name, "touch /root/repo/made-in-guest")
	e.ok("vm", "workspace", "prepare", name, repo.dir)
	if got := e.ssh(name, "ls /root/repo/made-in-guest 2>&1 || true"); !strings.Contains(got, "No such file") {
		t.Errorf("a second prepare kept a guest-only file: %q", got)
	}

	// --readonly: root cannot write, change or add.
	e.ok("vm", "workspace", "prepare", name, repo.dir, "--guest-path", "/root/ro", "--readonly")
	for _, cmd := range []string{"echo x >> /root/ro/README.md", "touch /root/ro/new-file", "rm /root/ro/staged.txt"} {
		_, stderr, code := e.run("vm", "ssh", name, "--", cmd)
		if code == 0 || !strings.Contains(stderr, "not permitted") {
			t.Errorf("%q in a read-only workspace: exit %d, %q; want it refused", cmd, code, stderr)
		}
	}
	if got := e.ssh(name, "cd /root/ro && git status --porcelain"); got != repo.git("status", "--porcelain") {
		t.Errorf("read-only workspace status = %q", got)
	}

	// Submodules: refused in shallow mode, carried by full_copy.
	sub := submoduleRepo(t)
	_, stderr, code = e.run("vm", "workspace", "prepare", name, sub.dir, "--guest-path", "/root/sub")
	if code == 0 || !strings.Contains(stderr, "--mode full_copy") {
		t.Errorf("shallow prepare of a repo with submodules: exit %d, %q; want a refusal pointing to --mode full_copy", code, stderr)
	}
	e.ok("vm", "workspace", "prepare", name, sub.dir, "--guest-path", "/root/sub", "--mode", "full_copy")
	got = e.ssh(name, "cd /root/sub && cat vendor/lib/lib.txt && git status --porcelain && git submodule status | cut -c1")
	if got != "lib\n \n" {
		t.Errorf("full_copy of a repo with a submodule: %q; want the submodule's file, a clean status, the submodule checked out", got)
	}
}

// submoduleRepo is a repository with one submodule.
func submoduleRepo(t *testing.T) *hostRepo {
	lib := newHostRepo(t)
	lib.write("lib.txt", "lib\n", 0o644)
	lib.git("add", "-A")
	lib.git("commit", "-q", "-m", "lib")
	r := newHostRepo(t)
	r.write("main.txt", "main\n", 0o644)
	r.git("add", "-A")
	r.git("submodule", "add", "-q", lib.dir, "vendor/lib")
	r.git("commit", "-q", "-m", "with a submodule")
	return r
}

// waitSessionDone polls a session until it has ended.
func waitSessionDone(t *testing.T, e *env, vm, name string) api.Session {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var s api.Session
		json.Unmarshal([]byte(e.ok("vm", "session", "show", vm, name, "--json")), &s)
		if s.State == api.SessionExited {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still %s", name, s.State)
		}
		time.Sleep(time.Second)
	}
}

// TestWorkspaceFigures compares 'vm workspace prepare' with 'rsync -a' over
// ssh into the same guest, for a generated repository of 20,000 files
// (about 300 MB, one commit), two rounds each, and logs the times and the
// ratio. It asserts nothing about time; run it with BANGER_E2E_FIGURES=1.
func TestWorkspaceFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure workspace copies")
	}
	fixture.Require(t, "rsync")
	repo := bigRepo(t, 20000, 300<<20)
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	e.ok("vm", "create", "--name", "bench", "--image", "deb", "--disk-size", "6G")
	ip := e.vm("bench").IP
	sshCmd := strings.Join(append([]string{"ssh"}, benchSSHArgs(e, "bench")...), " ")
	fresh := func() { e.ssh("bench", "rm -rf /root/ws /root/rs; sync; echo 3 > /proc/sys/vm/drop_caches") }

	var tBanger, tRsync []time.Duration
	for round := 0; round < 2; round++ {
		fresh()
		t0 := time.Now()
		out := e.ok("vm", "workspace", "prepare", "bench", repo, "--guest-path", "/root/ws", "--json")
		tBanger = append(tBanger, time.Since(t0))
		var ws api.Workspace
		json.Unmarshal([]byte(out), &ws)
		t.Logf("round %d: banger prepare %s (%d files in the tree, %d MB of file content sent, %d MB on the wire, daemon side %s)",
			round, tBanger[round].Round(10*time.Millisecond), ws.Files, ws.Bytes>>20, ws.Wire>>20, ws.Duration.Round(10*time.Millisecond))

		fresh()
		cmd := e.inNS("rsync", "-a", "-e", sshCmd, repo+"/", "root@"+ip+":/root/rs/")
		t0 = time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rsync: %v\n%s", err, b)
		}
		tRsync = append(tRsync, time.Since(t0))
		t.Logf("round %d: rsync -a over ssh %s", round, tRsync[round].Round(10*time.Millisecond))
	}
	b, r := minDuration(tBanger), minDuration(tRsync)
	t.Logf("workspace prepare: best %s; rsync -a over ssh: best %s; ratio banger/rsync = %.2f", b.Round(10*time.Millisecond), r.Round(10*time.Millisecond), b.Seconds()/r.Seconds())

	// What the first 'git status' costs in the guest (it reads every file
	// once to fill the index's stat data).
	fresh()
	e.ok("vm", "workspace", "prepare", "bench", repo, "--guest-path", "/root/ws")
	t0 := time.Now()
	if got := e.ssh("bench", "cd /root/ws && git status --porcelain | wc -l"); strings.TrimSpace(got) != "0" {
		t.Errorf("git status in the guest lists %s paths; want a clean tree", strings.TrimSpace(got))
	}
	t.Logf("first git status in the guest: %s", time.Since(t0).Round(10*time.Millisecond))
}

func benchSSHArgs(e *env, vm string) []string {
	dir := filepath.Join(e.home, "config", "banger", "ssh")
	return []string{"-i", filepath.Join(dir, "id_ed25519"), "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR", "-o", "HostKeyAlias=" + vm + ".vm"}
}

func minDuration(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}

// bigRepo generates a committed, packed repository of n files totalling
// about size bytes of source-like text (deterministic), in 100-file
// directories.
func bigRepo(t *testing.T, n int, size int64) string {
	t.Helper()
	r := newHostRepo(t)
	words := strings.Fields("func return if else for range var const type struct interface package import error nil true false " +
		"string int byte map chan go defer select case switch break continue context ctx err fmt errors value index count " +
		"buffer reader writer client server request response handler config option path file name data")
	rng := rand.New(rand.NewPCG(1, 2))
	avg := size / int64(n)
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		buf.Reset()
		want := avg/2 + rng.Int64N(avg)
		for int64(buf.Len()) < want {
			for j := 0; j < 12; j++ {
				buf.WriteString(words[rng.IntN(len(words))])
				buf.WriteByte(' ')
			}
			fmt.Fprintf(&buf, "%d\n", rng.IntN(1000000))
		}
		r.write(fmt.Sprintf("pkg%03d/file%05d.go", i/100, i), buf.String(), 0o644)
	}
	r.git("add", "-A")
	r.git("-c", "gc.auto=0", "commit", "-q", "-m", "generated")
	r.git("gc", "-q") // packed, as a cloned repository is
	return r.dir
}

// TestRunNextStepsWithoutDevboxTools: 'vm run' on an image with none of
// the devbox tools (the plain Debian fixture) prints no step for them,
// names what is missing and how to add it; 'image show' lists the tools.
func TestRunNextStepsWithoutDevboxTools(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("plain")
	if show := e.ok("image", "show", "plain"); !strings.Contains(show, "none (no mise, opencode, claude, pi)") {
		t.Errorf("image show does not list the missing tools:\n%s", show)
	}
	repo := mixedRepo(t)
	out := e.ok("vm", "run", repo.dir, "--image", "plain", "--name", "slim")
	for _, unwanted := range []string{"opencode attach", "vm acp", "&& claude", "&& pi", "running in the background (mise)"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("vm run printed %q for an image without the tool:\n%s", unwanted, out)
		}
	}
	for _, want := range []string{"banger vm ssh slim\n", "not in image plain: mise, opencode, claude, pi", "banger image build --name plain-devbox --from-image plain", "image plain has no mise"} {
		if !strings.Contains(out, want) {
			t.Errorf("vm run output lacks %q:\n%s", want, out)
		}
	}
	e.ok("vm", "delete", "--force", "slim")
}
