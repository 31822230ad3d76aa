package mcpserver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"banger/api"
	"banger/internal/mcpserver"
)

// TestScopeOwnVMsOnly: a VM the user made is invisible and untouchable
// for the agent; its own VMs stay its own across a server restart, and a
// VM recreated under the same name by someone else is not its.
func TestScopeOwnVMsOnly(t *testing.T) {
	w := newWorld(t)
	w.CreateVM(t, "theirs")
	a := w.connect(t, mcpserver.Scope{})
	a.must("vm_create", map[string]any{"name": "mine", "disk_mib": 64}, nil)

	var list vmList
	a.must("vm_list", nil, &list)
	if names(list) != "mine" {
		t.Errorf("vm_list = %s; want only mine", names(list))
	}
	refusal := `vm "theirs" was not created by this MCP server`
	for tool, args := range map[string]map[string]any{
		"vm_exec":           {"vm": "theirs", "command": "true"},
		"vm_delete":         {"vm": "theirs"},
		"vm_pause":          {"vm": "theirs"},
		"vm_resume":         {"vm": "theirs"},
		"file_read":         {"vm": "theirs", "path": "/etc/hostname"},
		"file_write":        {"vm": "theirs", "path": "/tmp/x", "content": "x"},
		"workspace_prepare": {"vm": "theirs", "host_path": "/tmp"},
		"workspace_export":  {"vm": "theirs", "host_path": "/tmp"},
		"session_start":     {"vm": "theirs", "session": "s", "command": "true"},
		"session_list":      {"vm": "theirs"},
		"session_logs":      {"vm": "theirs", "session": "s"},
		"session_stop":      {"vm": "theirs", "session": "s"},
	} {
		a.refused(tool, args, refusal)
	}
	if vm, err := w.cl.VM(context.Background(), "theirs"); err != nil || vm.State != api.VMRunning {
		t.Errorf("the user's VM after the refusals: %+v, %v", vm.State, err)
	}

	// A new server of the same scope (a restarted 'banger mcp') still
	// owns "mine"; another scope does not.
	b := w.connect(t, mcpserver.Scope{})
	b.must("vm_exec", map[string]any{"vm": "mine", "command": "true"}, nil)
	other := w.connect(t, mcpserver.Scope{Name: "other"})
	other.refused("vm_exec", map[string]any{"vm": "mine", "command": "true"}, `not created by this MCP server (scope "other")`)

	// The user deletes "mine" and makes a VM of that name: not the agent's.
	if err := w.cl.DeleteVM(context.Background(), "mine", true); err != nil {
		t.Fatal(err)
	}
	w.CreateVM(t, "mine")
	b.refused("vm_exec", map[string]any{"vm": "mine", "command": "true"}, `vm "mine" was not created by this MCP server`)
	b.must("vm_list", nil, &list)
	if len(list.VMs) != 0 {
		t.Errorf("vm_list after the user recreated mine = %s; want none", names(list))
	}
}

// TestScopeAllVMs: with AllVMs the agent may use the user's VMs but still
// delete only its own.
func TestScopeAllVMs(t *testing.T) {
	w := newWorld(t)
	w.CreateVM(t, "theirs")
	a := w.connect(t, mcpserver.Scope{AllVMs: true})
	var list vmList
	a.must("vm_list", nil, &list)
	if len(list.VMs) != 1 || list.VMs[0].Name != "theirs" || list.VMs[0].Owned {
		t.Errorf("vm_list = %+v; want theirs, not owned", list)
	}
	var out execOut
	a.must("vm_exec", map[string]any{"vm": "theirs", "command": "echo hi"}, &out)
	if out.Stdout != "hi\n" {
		t.Errorf("exec in the user's VM = %+v", out)
	}
	a.refused("vm_delete", map[string]any{"vm": "theirs"}, `vm "theirs" was not created by this MCP server`)
}

// TestScopeLimits: the VM count cap and the allowed images.
func TestScopeLimits(t *testing.T) {
	w := newWorld(t)
	w.RegisterImage(t, "other")
	a := w.connect(t, mcpserver.Scope{MaxVMs: 2, Images: []string{"other"}})
	var vm vmView
	a.must("vm_create", map[string]any{"name": "one", "disk_mib": 64}, &vm)
	if vm.Image != "other" {
		t.Errorf("create without an image used %q; want the first allowed image, other", vm.Image)
	}
	a.refused("vm_create", map[string]any{"name": "two", "image": "default", "disk_mib": 64}, `image "default" is not allowed for this MCP server; allowed images: other`)
	a.must("vm_create", map[string]any{"name": "two", "image": "other", "disk_mib": 64}, nil)
	a.refused("vm_create", map[string]any{"name": "three", "disk_mib": 64}, "already has 2 VM(s) (one, two), its limit (--max-vms 2); delete one with vm_delete first")
	// The user's VMs do not count; deleting one of the agent's frees a slot.
	w.CreateVM(t, "theirs")
	a.must("vm_delete", map[string]any{"vm": "one"}, nil)
	a.must("vm_create", map[string]any{"name": "three", "disk_mib": 64}, nil)
	// A VM deleted behind the agent's back frees its slot too.
	if err := w.cl.DeleteVM(context.Background(), "two", true); err != nil {
		t.Fatal(err)
	}
	a.must("vm_create", map[string]any{"name": "four", "disk_mib": 64}, nil)
	a.refused("vm_create", map[string]any{"name": "theirs", "disk_mib": 64}, `vm "theirs" already exists`)
}

// TestScopeRecordDamaged: a damaged ownership record is reported, not
// silently replaced (which would lose what the agent owns).
func TestScopeRecordDamaged(t *testing.T) {
	w := newWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	p := filepath.Join(w.stateDir, "mcp", "default.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("{not json"), 0o600)
	a.refused("vm_create", map[string]any{"name": "x", "disk_mib": 64}, "damaged")
	if data, _ := os.ReadFile(p); string(data) != "{not json" {
		t.Errorf("the damaged record was rewritten: %q", data)
	}
}

func TestScopeValidate(t *testing.T) {
	for _, sc := range []mcpserver.Scope{
		{Name: "Bad Name"},
		{Name: "ok", MaxVMs: -1},
		{Name: "ok", Images: []string{"../x"}},
	} {
		if _, err := mcpserver.New(mcpserver.Options{StateDir: t.TempDir(), Scope: sc}); err == nil {
			t.Errorf("New accepted scope %+v", sc)
		}
	}
}

// TestScopeLimitConcurrent: creates racing each other, from two servers
// of one scope, never own more than the cap together.
func TestScopeLimitConcurrent(t *testing.T) {
	w := newWorld(t)
	sc := mcpserver.Scope{MaxVMs: 2}
	agents := []*agent{w.connect(t, sc), w.connect(t, sc)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, refused := 0, 0
	for i := range 6 {
		wg.Go(func() {
			msg := agents[i%2].call("vm_create", map[string]any{"name": fmt.Sprintf("vm%d", i), "disk_mib": 64}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case msg == "":
				made++
			case strings.Contains(msg, "its limit (--max-vms 2)"):
				refused++
			default:
				t.Errorf("vm_create vm%d: %s", i, msg)
			}
		})
	}
	wg.Wait()
	if made != 2 || refused != 4 {
		t.Errorf("%d created, %d refused; want 2 and 4", made, refused)
	}
	if vms, _ := w.cl.VMs(context.Background()); len(vms) != 2 {
		t.Errorf("the daemon has %d VMs; want 2", len(vms))
	}
}
