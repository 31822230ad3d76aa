//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/testutil/fixture"
)

// mcpSDK is the official TypeScript MCP SDK the client script uses,
// pinned so the test does not change under us.
const mcpSDK = "@modelcontextprotocol/sdk@1.32.2"

// TestMCPClient drives 'banger mcp' with a real MCP client that is not
// ours: a Node script on the official TypeScript SDK (installed from npm
// into a temp dir) lists the tools, creates a VM on a real busybox guest
// with progress, runs uname -r in it, writes and reads a file, is refused
// a VM it did not create, and deletes its VM.
func TestMCPClient(t *testing.T) {
	for _, tool := range []string{"npm", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install nodejs npm; scripts/install-deps does it): the test needs the official TypeScript MCP SDK", tool)
		}
	}
	e := newEnv(t, "")
	dir := t.TempDir()
	var npmErr error
	var npmOut []byte
	var wg sync.WaitGroup
	wg.Go(func() { // while the guests boot
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", mcpSDK)
		cmd.Dir = dir
		npmOut, npmErr = cmd.CombinedOutput()
	})
	defer wg.Wait()
	script, err := os.ReadFile(filepath.Join("testdata", "mcpclient.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "mcpclient.mjs"), script, 0o644)

	e.startDaemon()
	e.registerBusybox("bb")
	k := fixture.DebianKernel(t)
	e.ok("vm", "create", "--name", "theirs", "--image", "bb", "--memory", "512", "--disk-size", "1G")
	wg.Wait()
	if npmErr != nil {
		t.Fatalf("npm install %s: %v\n%s", mcpSDK, npmErr, npmOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "mcpclient.mjs",
		"ip", "netns", "exec", e.ns.Name, filepath.Join(binDir, "banger"), "mcp", "--allow-image", "bb", "--max-vms", "1")
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(e.vars), "MCP_IMAGE=bb", "MCP_THEIRS=theirs")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node mcpclient.mjs: %v\nstderr:\n%s\ndaemon log tail:\n%s", err, stderr.String(), e.daemonLog())
	}
	var seen struct {
		Tools    []string
		Progress int
		Created  struct {
			Name, State string
			Owned       bool
		}
		Uname struct {
			Stdout   string
			ExitCode int `json:"exit_code"`
		}
		Read    string
		Refused struct {
			IsError bool
			Text    string
		}
		Listed  []string
		Deleted string
		After   []string
		Error   string
	}
	if err := json.Unmarshal(stdout.Bytes(), &seen); err != nil {
		t.Fatalf("decoding the client's report %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	if seen.Error != "" {
		t.Fatalf("the MCP client failed: %s\nstderr:\n%s\ndaemon log tail:\n%s", seen.Error, stderr.String(), e.daemonLog())
	}
	for _, want := range []string{"vm_create", "vm_list", "vm_delete", "vm_exec", "file_read", "file_write", "workspace_prepare",
		"workspace_export", "session_start", "session_list", "session_logs", "session_stop", "vm_pause", "vm_resume", "vm_fork"} {
		if !slices.Contains(seen.Tools, want) {
			t.Errorf("tools listed = %v; %s missing", seen.Tools, want)
		}
	}
	if seen.Progress == 0 {
		t.Error("vm_create sent the client no progress notification")
	}
	if seen.Created.Name != "agentvm" || seen.Created.State != "running" || !seen.Created.Owned {
		t.Errorf("vm_create = %+v", seen.Created)
	}
	if got := strings.TrimSpace(seen.Uname.Stdout); got != k.Release || seen.Uname.ExitCode != 0 {
		t.Errorf("uname -r through vm_exec = %q (exit %d); want %q", got, seen.Uname.ExitCode, k.Release)
	}
	if seen.Read != "hello from an agent\n" {
		t.Errorf("file_read after file_write = %q", seen.Read)
	}
	if !seen.Refused.IsError || !strings.Contains(seen.Refused.Text, `vm "theirs" was not created by this MCP server`) {
		t.Errorf("vm_exec in the user's VM: %+v; want a scope refusal", seen.Refused)
	}
	if !slices.Equal(seen.Listed, []string{"agentvm"}) || seen.Deleted != "agentvm" || len(seen.After) != 0 {
		t.Errorf("vm_list = %v, vm_delete = %q, then vm_list = %v", seen.Listed, seen.Deleted, seen.After)
	}
	out := e.ok("vm", "list", "--json")
	if names := jsonNames(out); !slices.Equal(names, []string{"theirs"}) {
		t.Errorf("VMs after the client ended = %v; want only theirs", names)
	}
	t.Logf("client stderr:\n%s", stderr.String())
}
