package mcpserver_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/internal/mcpserver"
)

var allTools = []string{
	"file_read", "file_write", "session_list", "session_logs", "session_start", "session_stop",
	"vm_create", "vm_delete", "vm_exec", "vm_fork", "vm_list", "vm_pause", "vm_resume", "workspace_export", "workspace_prepare",
}

// TestToolsDescribed: every tool is listed with a description and an
// object input schema whose properties are described too.
func TestToolsDescribed(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	res, err := a.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tool := range res.Tools {
		got = append(got, tool.Name)
		if len(tool.Description) < 30 {
			t.Errorf("tool %s: description %q is too thin for an agent", tool.Name, tool.Description)
		}
		schema, _ := tool.InputSchema.(map[string]any)
		if schema["type"] != "object" {
			t.Errorf("tool %s: input schema %v is not an object", tool.Name, tool.InputSchema)
		}
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			if d, _ := p.(map[string]any)["description"].(string); d == "" {
				t.Errorf("tool %s: argument %s has no description", tool.Name, name)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, allTools) {
		t.Errorf("tools = %v\nwant %v", got, allTools)
	}
}

type execOut struct {
	ExitCode        int    `json:"exit_code"`
	Signal          string `json:"signal"`
	TimedOut        bool   `json:"timed_out"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
}

// TestVMLifecycle creates a VM (with progress), lists, pauses and resumes
// it, then deletes it.
func TestVMLifecycle(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	var vm vmView
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64, "memory_mib": 256}, &vm, "create-1")
	if vm.Name != "box" || vm.State != "running" || vm.Image != "default" || !vm.Owned {
		t.Errorf("vm_create = %+v", vm)
	}
	a.mu.Lock()
	n := len(a.progress)
	for i, p := range a.progress {
		if p.ProgressToken != "create-1" || p.Progress != float64(i+1) || p.Message == "" {
			t.Errorf("progress %d = %+v; want token create-1, progress %d and a message", i, p, i+1)
		}
	}
	a.mu.Unlock()
	if n == 0 {
		t.Error("vm_create with a progress token sent no progress notification")
	}
	var list vmList
	a.must("vm_list", nil, &list)
	if names(list) != "box" {
		t.Errorf("vm_list = %s; want box", names(list))
	}
	a.must("vm_pause", map[string]any{"vm": "box"}, &vm)
	if vm.State != "paused" {
		t.Errorf("after vm_pause: %s", vm.State)
	}
	a.must("vm_resume", map[string]any{"vm": "box"}, &vm)
	if vm.State != "running" {
		t.Errorf("after vm_resume: %s", vm.State)
	}
	// Without a progress token, no notification.
	a.mu.Lock()
	a.progress = nil
	a.mu.Unlock()
	a.must("vm_create", map[string]any{"disk_mib": 64}, &vm)
	if !strings.HasPrefix(vm.Name, "mcp-") {
		t.Errorf("generated name %q; want mcp-...", vm.Name)
	}
	if len(a.progress) != 0 {
		t.Errorf("%d progress notifications without a token", len(a.progress))
	}
	a.must("vm_delete", map[string]any{"vm": "box"}, nil)
	a.must("vm_delete", map[string]any{"vm": vm.Name}, nil)
	a.must("vm_list", nil, &list)
	if len(list.VMs) != 0 {
		t.Errorf("vm_list after deletes = %s", names(list))
	}
	if vms, _ := w.cl.VMs(context.Background()); len(vms) != 0 {
		t.Errorf("daemon still has %d VMs", len(vms))
	}
	a.refused("vm_create", map[string]any{"name": "Bad_Name"}, "not a DNS label")
	a.refused("vm_create", map[string]any{"image": "nope", "disk_mib": 64}, "nope")
	if l, _ := w.cl.VMs(context.Background()); len(l) != 0 {
		t.Errorf("failed creates left %d VMs", len(l))
	}
}

func TestExec(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	dir := t.TempDir() // the fake guest is this host

	var out execOut
	a.must("vm_exec", map[string]any{"vm": "box", "command": "echo out; echo err >&2; exit 3"}, &out)
	if out.ExitCode != 3 || out.Stdout != "out\n" || out.Stderr != "err\n" || out.TimedOut {
		t.Errorf("exec = %+v", out)
	}
	a.must("vm_exec", map[string]any{"vm": "box", "argv": []string{"sh", "-c", `echo "$PWD:$A:$(cat)"`}, "cwd": dir, "env": map[string]string{"A": "b c"}, "stdin": "input"}, &out)
	if want := dir + ":b c:input\n"; out.Stdout != want || out.ExitCode != 0 {
		t.Errorf("cwd, env, stdin: %+v; want stdout %q", out, want)
	}
	a.must("vm_exec", map[string]any{"vm": "box", "command": "kill -TERM $$"}, &out)
	if out.ExitCode != -1 || out.Signal != "TERM" {
		t.Errorf("killed command: %+v; want exit -1, signal TERM", out)
	}
	// A flood of output, with invalid UTF-8 and NUL, is cut to the limit
	// and stays valid UTF-8; the command still runs to its end.
	a.must("vm_exec", map[string]any{"vm": "box", "command": `printf '\377\000ok'; head -c 3000000 /dev/zero; echo done >&2`, "max_output_bytes": 1000}, &out)
	if !out.StdoutTruncated || !utf8.ValidString(out.Stdout) ||
		!strings.HasPrefix(out.Stdout, "\uFFFD\x00ok") || !strings.HasSuffix(out.Stdout, "\n[banger: output truncated: 2999004 more bytes not shown]") {
		t.Errorf("flooded stdout (%d bytes): truncated=%v, starts %q, ends %q", len(out.Stdout), out.StdoutTruncated, out.Stdout[:10], out.Stdout[len(out.Stdout)-60:])
	}
	if out.Stderr != "done\n" || out.ExitCode != 0 {
		t.Errorf("after a flood: stderr %q, exit %d", out.Stderr, out.ExitCode)
	}
	a.must("vm_exec", map[string]any{"vm": "box", "command": "echo started; sleep 30", "timeout_seconds": 1}, &out)
	if !out.TimedOut || out.ExitCode != -1 || out.Stdout != "started\n" {
		t.Errorf("timed out exec = %+v", out)
	}
	// A call the client cancels kills its command.
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, func() bool { _, err := os.Stat(pidFile); return err == nil })
		cancel()
	}()
	_, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "vm_exec", Arguments: map[string]any{"vm": "box", "command": "echo $$ > " + pidFile + "; exec sleep 60"}})
	if err == nil {
		t.Error("cancelled vm_exec returned no error")
	}
	waitFor(t, func() bool {
		data, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return pid > 0 && syscall.Kill(pid, 0) != nil
	})
	a.refused("vm_exec", map[string]any{"vm": "box"}, "give the command to run")
	a.refused("vm_exec", map[string]any{"vm": "box", "command": "x", "argv": []string{"y"}}, "not both")
	a.refused("vm_exec", map[string]any{"vm": "box", "command": "true", "timeout_seconds": 7200}, "session_start")
	a.refused("vm_exec", map[string]any{"vm": "box", "command": "true", "env": map[string]string{"A=B": "c"}}, "not a variable name")
	a.refused("vm_exec", map[string]any{"vm": "nope", "command": "true"}, `vm "nope" not found`)
	a.refused("vm_exec", map[string]any{"command": "true"}, `required`)
}

type readOut struct {
	Size      int64  `json:"size"`
	Offset    int64  `json:"offset"`
	Content   string `json:"content"`
	Encoding  string `json:"encoding"`
	Truncated bool   `json:"truncated"`
	Binary    bool   `json:"binary"`
}

func TestFiles(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	dir := t.TempDir()
	p := filepath.Join(dir, "new", "notes.txt")

	a.must("file_write", map[string]any{"vm": "box", "path": p, "content": "héllo\n"}, nil)
	if got, err := os.ReadFile(p); string(got) != "héllo\n" {
		t.Errorf("written file = %q, %v", got, err)
	}
	var r readOut
	a.must("file_read", map[string]any{"vm": "box", "path": p}, &r)
	if r.Content != "héllo\n" || r.Size != 7 || r.Truncated || r.Binary || r.Encoding != "text" {
		t.Errorf("file_read = %+v", r)
	}
	// Overwrite with binary content and a mode.
	bin := []byte{0, 1, 0xff, 'x', 0xfe}
	a.must("file_write", map[string]any{"vm": "box", "path": p, "content": base64.StdEncoding.EncodeToString(bin), "encoding": "base64", "mode": "0750"}, nil)
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o750 || fi.Size() != 5 {
		t.Errorf("rewritten file: %v, %v", fi, err)
	}
	a.must("file_read", map[string]any{"vm": "box", "path": p}, &r)
	if !r.Binary || !utf8.ValidString(r.Content) {
		t.Errorf("binary read as text = %+v", r)
	}
	a.must("file_read", map[string]any{"vm": "box", "path": p, "encoding": "base64"}, &r)
	if got, _ := base64.StdEncoding.DecodeString(r.Content); string(got) != string(bin) {
		t.Errorf("base64 read = %v; want %v", got, bin)
	}
	// A large file comes in pages.
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("0123456789", 100)), 0o644)
	a.must("file_read", map[string]any{"vm": "box", "path": big, "max_bytes": 300}, &r)
	if len(r.Content) != 300 || !r.Truncated || r.Size != 1000 {
		t.Errorf("first page: %d bytes, %+v", len(r.Content), r.Truncated)
	}
	a.must("file_read", map[string]any{"vm": "box", "path": big, "offset": 905, "max_bytes": 300}, &r)
	if r.Content != strings.Repeat("5678901234", 10)[:95] || r.Truncated || r.Offset != 905 {
		t.Errorf("last page = %q, truncated %v", r.Content, r.Truncated)
	}
	// A huge file: one page comes back, the rest is never read.
	huge := filepath.Join(dir, "huge")
	if f, err := os.Create(huge); err != nil || f.Truncate(4<<30) != nil || f.Close() != nil {
		t.Fatalf("making a sparse 4 GiB file: %v", err)
	}
	a.must("file_read", map[string]any{"vm": "box", "path": huge, "max_bytes": 10, "encoding": "base64"}, &r)
	if r.Size != 4<<30 || !r.Truncated || r.Content != base64.StdEncoding.EncodeToString(make([]byte, 10)) {
		t.Errorf("huge file page = %+v", r)
	}
	a.refused("file_read", map[string]any{"vm": "box", "path": dir}, "is a directory")
	a.refused("file_read", map[string]any{"vm": "box", "path": filepath.Join(dir, "missing")}, "missing")
	a.refused("file_read", map[string]any{"vm": "box", "path": "relative"}, "not absolute")
	a.refused("file_write", map[string]any{"vm": "box", "path": p, "content": "!", "encoding": "base64"}, "not valid base64")
	a.refused("file_write", map[string]any{"vm": "box", "path": p, "content": "x", "mode": "rwx"}, "not octal")
}

type session struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	ExitCode *int   `json:"exit_code"`
	Signal   string `json:"signal"`
}

func TestSessions(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	var s session
	a.must("session_start", map[string]any{"vm": "box", "session": "srv", "command": "echo up; echo warn >&2; head -c 200000 /dev/zero | tr '\\0' x; echo; echo tail; exec sleep 60"}, &s)
	if s.Name != "srv" || s.State != "running" {
		t.Errorf("session_start = %+v", s)
	}
	var list struct {
		Sessions []session `json:"sessions"`
	}
	a.must("session_list", map[string]any{"vm": "box"}, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Name != "srv" {
		t.Errorf("session_list = %+v", list)
	}
	var logs struct {
		Log       string `json:"log"`
		Truncated bool   `json:"truncated"`
	}
	waitFor(t, func() bool {
		a.must("session_logs", map[string]any{"vm": "box", "session": "srv", "max_bytes": 100}, &logs)
		return strings.HasSuffix(logs.Log, "tail\n")
	})
	if !logs.Truncated || !strings.HasPrefix(logs.Log, "[banger: output truncated: 199909 earlier bytes not shown]\n") {
		t.Errorf("session_logs tail = %q", logs.Log)
	}
	a.must("session_logs", map[string]any{"vm": "box", "session": "srv", "stream": "stderr"}, &logs)
	if logs.Log != "warn\n" || logs.Truncated {
		t.Errorf("stderr log = %+v", logs)
	}
	a.must("session_stop", map[string]any{"vm": "box", "session": "srv", "timeout_seconds": 2}, &s)
	if s.State != "exited" || s.Signal != "TERM" {
		t.Errorf("session_stop = %+v", s)
	}
	a.refused("session_logs", map[string]any{"vm": "box", "session": "srv", "stream": "both"}, "not stdout or stderr")
	a.refused("session_start", map[string]any{"vm": "box", "command": "true"}, "session")
}

func TestWorkspace(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	w := newWorld(t)
	repo := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.email=t@example.com", "-c", "user.name=T"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(repo, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(repo, "a.txt"), []byte("a\n"), 0o644)
	git(repo, "add", "-A")
	git(repo, "commit", "-q", "-m", "init")
	a := w.connect(t, mcpserver.Scope{WorkDir: repo})
	a.must("vm_create", map[string]any{"name": "box", "disk_mib": 64}, nil)
	guest := filepath.Join(t.TempDir(), "repo") // the fake guest is this host

	a.mu.Lock()
	a.progress = nil
	a.mu.Unlock()
	var ws struct {
		GuestPath string `json:"guest_path"`
		Files     int    `json:"files"`
	}
	a.must("workspace_prepare", map[string]any{"vm": "box", "host_path": repo, "guest_path": guest}, &ws, 7)
	if ws.GuestPath != guest || ws.Files != 1 {
		t.Errorf("workspace_prepare = %+v", ws)
	}
	a.mu.Lock()
	if len(a.progress) == 0 {
		t.Error("workspace_prepare with a progress token sent no progress notification")
	}
	a.mu.Unlock()
	a.must("vm_exec", map[string]any{"vm": "box", "cwd": guest, "command": "echo b > b.txt"}, nil)
	var ex struct {
		Branch      string `json:"branch"`
		Uncommitted bool   `json:"uncommitted"`
	}
	a.must("workspace_export", map[string]any{"vm": "box", "host_path": repo, "guest_path": guest, "branch": "agent-work"}, &ex)
	if ex.Branch != "agent-work" || !ex.Uncommitted {
		t.Errorf("workspace_export = %+v", ex)
	}
	if got := git(repo, "show", "agent-work:b.txt"); got != "b" {
		t.Errorf("b.txt on the exported branch = %q", got)
	}
	a.refused("workspace_prepare", map[string]any{"vm": "box", "host_path": "rel"}, "not absolute")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		sleep()
	}
	t.Fatal("condition not met in time")
}
