//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"banger/api"
)

// guestWorkTree is the tree ID the guest's work tree would commit as
// (tracked and untracked non-ignored files), computed by git in the guest
// with a scratch index and object directory so the checkout stays as it is.
const guestWorkTree = `t=$(mktemp -d) && mkdir $t/o && cp .git/index $t/i && ` +
	`GIT_INDEX_FILE=$t/i GIT_OBJECT_DIRECTORY=$t/o GIT_ALTERNATE_OBJECT_DIRECTORIES=$PWD/.git/objects sh -c 'git add -A && git write-tree'; rm -rf $t`

// guestState is what export must leave alone in a guest checkout.
const guestState = `git status --porcelain && git rev-parse HEAD && git for-each-ref && git stash list && sha256sum .git/index`

// TestWorkspaceExport works in a guest from 'vm run' (shallow), then in a
// full_copy and a history workspace of the same guest, and brings each
// back with 'vm workspace export': the host branch holds the guest's work
// tree, and neither the guest checkout nor the host's branch, index and
// work tree change.
func TestWorkspaceExport(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	repo := newHostRepo(t)
	repo.write("a.txt", "one\n", 0o644)
	repo.write("b.txt", "b\n", 0o644)
	repo.write(".gitignore", "*.log\n", 0o644)
	repo.git("add", "-A")
	repo.git("commit", "-q", "-m", "one")
	repo.write("a.txt", "two\n", 0o644)
	repo.git("commit", "-q", "-am", "two")
	repo.write("host-only.txt", "uncommitted on the host\n", 0o644) // after run: the host's own work in progress

	var res struct {
		VM api.VM `json:"vm"`
	}
	out := e.ok("vm", "run", repo.dir, "--image", "deb", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("vm run --json: %v\n%s", err, out)
	}
	name := res.VM.Name
	e.ok("vm", "workspace", "prepare", name, repo.dir, "--guest-path", "/root/full", "--mode", "full_copy")
	e.ok("vm", "workspace", "prepare", name, repo.dir, "--guest-path", "/root/hist", "--mode", "history")
	hostState := func() string {
		return repo.git("symbolic-ref", "HEAD") + repo.git("rev-parse", "HEAD") + repo.git("status", "--porcelain") + repo.git("diff")
	}
	hostBefore := hostState()

	for _, c := range []struct{ guestPath, branch string }{{"/root/repo", ""}, {"/root/full", "banger/full"}} {
		in := "cd " + c.guestPath + " && "
		// One commit, then one modified and one new file, and an ignored one.
		e.ssh(name, in+"echo guest > c.txt && git add c.txt && git -c user.name=G -c user.email=g@example.com commit -q -m 'guest commit' && "+
			"echo 'b, edited in the guest' > b.txt && echo new > new.txt && echo ignored > build.log")
		before := e.ssh(name, in+guestState)
		wantTree := strings.TrimSpace(e.ssh(name, in+guestWorkTree))

		args := []string{"vm", "workspace", "export", name, c.guestPath, "--repo", repo.dir, "--json"}
		branch := "banger/" + name
		if c.branch != "" {
			args, branch = append(args, "--branch", c.branch), c.branch
		}
		var ex api.WorkspaceExport
		if err := json.Unmarshal([]byte(e.ok(args...)), &ex); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: exported %d commit(s) and the uncommitted work in %s (bundle %d bytes)", c.guestPath, ex.Commits, ex.Duration, ex.Bytes)
		if ex.Branch != branch || ex.Commits != 1 || !ex.Uncommitted || ex.Base != strings.TrimSpace(repo.git("rev-parse", "HEAD")) {
			t.Errorf("%s: export = %+v", c.guestPath, ex)
		}
		if got := strings.TrimSpace(repo.git("rev-parse", branch+"^{tree}")); got != wantTree {
			t.Errorf("%s: host branch tree %s; want the guest work tree %s\n%s", c.guestPath, got, wantTree, repo.git("ls-tree", "-r", branch))
		}
		if got := repo.git("show", branch+":b.txt"); got != "b, edited in the guest\n" {
			t.Errorf("%s: b.txt on %s = %q", c.guestPath, branch, got)
		}
		if got := e.ssh(name, in+guestState); got != before {
			t.Errorf("%s: the guest checkout changed:\n%s\nwas:\n%s", c.guestPath, got, before)
		}
		if got := hostState(); got != hostBefore {
			t.Errorf("%s: the host's branch, index or work tree changed:\n%s\nwas:\n%s", c.guestPath, got, hostBefore)
		}
	}
	// The review flow the docs give.
	if got := repo.git("diff", "--name-only", "main...banger/"+name); got != "b.txt\nc.txt\nhost-only.txt\nnew.txt\n" { // host-only.txt: the host's untracked file, which prepare carried
		t.Errorf("git diff main...banger/%s names %q", name, got)
	}

	// Again into the same branch: refused, then replaced with --force.
	_, stderr, code := e.run("vm", "workspace", "export", name, "--repo", repo.dir)
	if code == 0 || !strings.Contains(stderr, "--force") {
		t.Errorf("export into an existing branch: exit %d, %q; want a refusal naming --force", code, stderr)
	}
	e.ssh(name, "echo more >> /root/repo/new.txt")
	e.ok("vm", "workspace", "export", name, "--repo", repo.dir, "--force")
	if got := repo.git("show", "banger/"+name+":new.txt"); got != "new\nmore\n" {
		t.Errorf("after --force, new.txt = %q", got)
	}

	// history: the branch's whole history in the guest, and the answers
	// for a guest with nothing new and one that rewrote its history.
	if got := e.ssh(name, "cd /root/hist && git rev-parse --is-shallow-repository && git rev-list --count HEAD && git log --format=%s"); got != "false\n2\ntwo\none\n" {
		t.Errorf("history workspace: %q; want not shallow, 2 commits", got)
	}
	e.ssh(name, "rm /root/hist/host-only.txt") // the host's uncommitted file: nothing new left
	_, stderr, code = e.run("vm", "workspace", "export", name, "/root/hist", "--repo", repo.dir, "--branch", "banger/hist")
	if code == 0 || !strings.Contains(stderr, "nothing to export") {
		t.Errorf("export with nothing new: exit %d, %q", code, stderr)
	}
	e.ssh(name, "cd /root/hist && git -c user.name=G -c user.email=g@example.com commit -q --amend -m rewritten")
	_, stderr, code = e.run("vm", "workspace", "export", name, "/root/hist", "--repo", repo.dir, "--branch", "banger/hist")
	if code == 0 || !strings.Contains(stderr, "rewritten") {
		t.Errorf("export after an amend: exit %d, %q; want it to say the history was rewritten", code, stderr)
	}
	if got := repo.git("branch", "--list", "banger/hist"); got != "" {
		t.Errorf("a refused export made a branch: %q", got)
	}
}

// TestWorkspaceOnBusybox uses the busybox guest (no git, chattr or
// mountpoint): a read-only workspace falls back to a bind mount, which a
// later prepare lifts; export says it needs git. It also gets the
// credentials its --auth-sync names, and only those.
func TestWorkspaceOnBusybox(t *testing.T) {
	e := newEnv(t, "")
	creds := writeHostCreds(t, e.home)
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "bb", "--image", "bb", "--memory", "256", "--disk-size", "256M", "--auth-sync", "opencode,claude")
	for rel, want := range creds {
		got := strings.TrimSpace(e.ssh("bb", "if [ -e /root/"+rel+" ]; then stat -c %a /root/"+rel+"; cat /root/"+rel+"; else echo absent; fi"))
		if rel == ".pi/agent/auth.json" {
			want = "absent" // not in --auth-sync
		} else {
			want = "600\n" + want
		}
		if got != want {
			t.Errorf("/root/%s in the busybox guest with --auth-sync opencode,claude: %q, want %q", rel, got, want)
		}
	}
	repo := newHostRepo(t)
	repo.write("a.txt", "a\n", 0o644)
	repo.git("add", "-A")
	repo.git("commit", "-q", "-m", "one")

	e.ok("vm", "workspace", "prepare", "bb", repo.dir, "--guest-path", "/root/ro", "--readonly")
	if _, stderr, code := e.run("vm", "ssh", "bb", "--", "touch /root/ro/x"); code == 0 || !strings.Contains(stderr, "Read-only") {
		t.Errorf("writing into the read-only workspace: exit %d, %q; want a read-only file system error", code, stderr)
	}
	e.ok("vm", "workspace", "prepare", "bb", repo.dir, "--guest-path", "/root/ro")
	e.ssh("bb", "touch /root/ro/x")
	if got := e.ssh("bb", "grep -c ' /root/ro ' /proc/self/mountinfo || true"); strings.TrimSpace(got) != "0" {
		t.Errorf("the bind mount is still there after the second prepare: %q", got)
	}

	_, stderr, code := e.run("vm", "workspace", "export", "bb", "/root/ro", "--repo", repo.dir)
	if code == 0 || !strings.Contains(stderr, "needs git") {
		t.Errorf("export from a guest without git: exit %d, %q; want it to say export needs git in the guest", code, stderr)
	}
}
