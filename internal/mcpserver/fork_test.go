package mcpserver_test

import (
	"context"
	"strings"
	"testing"

	"banger/api"
	"banger/internal/mcpserver"
	"banger/internal/vmm/vmmfake"
)

// TestVMFork forks a VM the agent made, with progress and without, and
// checks the forks are running copies the agent owns.
func TestVMFork(t *testing.T) {
	w := newForkWorld(t)
	a := w.connect(t, mcpserver.Scope{})
	a.must("vm_create", map[string]any{"name": "dev", "disk_mib": 64}, nil)
	a.must("file_write", map[string]any{"vm": "dev", "path": "/root/note", "content": "before the fork"}, nil)

	var vm vmView
	a.must("vm_fork", map[string]any{"vm": "dev", "name": "twin"}, &vm, "fork-1")
	if vm.Name != "twin" || vm.State != "running" || vm.Image != "default" || !vm.Owned {
		t.Errorf("vm_fork = %+v; want twin running, of image default, owned", vm)
	}
	a.mu.Lock()
	n := len(a.progress)
	for i, p := range a.progress {
		if p.ProgressToken != "fork-1" || p.Progress != float64(i+1) || p.Message == "" {
			t.Errorf("progress %d = %+v; want token fork-1, progress %d and a message", i, p, i+1)
		}
	}
	a.progress = nil
	a.mu.Unlock()
	if n == 0 {
		t.Error("vm_fork with a progress token sent no progress notification")
	}
	var file struct {
		Content string `json:"content"`
	}
	a.must("file_read", map[string]any{"vm": "twin", "path": "/root/note"}, &file)
	if file.Content != "before the fork" {
		t.Errorf("the fork's /root/note = %q; want the source's", file.Content)
	}
	// The source carries on.
	if src, err := w.cl.VM(context.Background(), "dev"); err != nil || src.State != api.VMRunning {
		t.Errorf("the source after the fork: %s, %v", src.State, err)
	}

	// Without a name: generated; without a token: no notification.
	a.must("vm_fork", map[string]any{"vm": "twin"}, &vm)
	if !strings.HasPrefix(vm.Name, "mcp-") || !vm.Owned {
		t.Errorf("vm_fork without a name = %+v; want mcp-..., owned", vm)
	}
	a.mu.Lock()
	if len(a.progress) != 0 {
		t.Errorf("%d progress notifications without a token", len(a.progress))
	}
	a.mu.Unlock()
	var list vmList
	a.must("vm_list", nil, &list)
	if got, want := names(list), "dev,"+vm.Name+",twin"; got != want {
		t.Errorf("vm_list = %s; want %s", got, want)
	}
	a.refused("vm_fork", map[string]any{"vm": "dev", "name": "twin"}, `vm "twin" already exists`)
	a.refused("vm_fork", map[string]any{"vm": "nope"}, `vm "nope" not found`)
	a.must("vm_delete", map[string]any{"vm": vm.Name}, nil)

	// The fork is recorded by the daemon's id: one the user deletes and
	// makes again under its name is not the agent's.
	if err := w.cl.DeleteVM(context.Background(), "twin", true); err != nil {
		t.Fatal(err)
	}
	w.CreateVM(t, "twin")
	a.refused("file_read", map[string]any{"vm": "twin", "path": "/root/note"}, `vm "twin" was not created by this MCP server`)
}

// TestForkScope: the agent may fork only a VM its scope may use, and the
// fork is its own even when the source is the user's (with AllVMs).
func TestForkScope(t *testing.T) {
	w := newForkWorld(t)
	w.CreateVM(t, "theirs")
	a := w.connect(t, mcpserver.Scope{})
	a.refused("vm_fork", map[string]any{"vm": "theirs", "name": "copy"}, `vm "theirs" was not created by this MCP server`)
	if _, err := w.cl.VM(context.Background(), "copy"); err == nil {
		t.Error("the refused fork made a VM")
	}

	all := w.connect(t, mcpserver.Scope{Name: "all", AllVMs: true})
	var vm vmView
	all.must("vm_fork", map[string]any{"vm": "theirs", "name": "copy"}, &vm)
	if !vm.Owned {
		t.Errorf("the fork of the user's VM = %+v; want it owned", vm)
	}
	all.must("vm_delete", map[string]any{"vm": "copy"}, nil)
	all.refused("vm_delete", map[string]any{"vm": "theirs"}, `vm "theirs" was not created by this MCP server`)
}

// TestForkLimits: forks count toward --max-vms and must be of an allowed
// image; a failed fork gives its slot back.
func TestForkLimits(t *testing.T) {
	w := newForkWorld(t)
	w.RegisterImage(t, "other")
	if _, err := w.D.CreateVM(context.Background(), api.CreateVMRequest{Name: "theirs", Image: "other", DiskBytes: 64 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	a := w.connect(t, mcpserver.Scope{MaxVMs: 2, AllVMs: true, Images: []string{"default"}})
	a.refused("vm_fork", map[string]any{"vm": "theirs"}, `image "other" is not allowed for this MCP server; allowed images: default`)
	a.must("vm_create", map[string]any{"name": "one", "disk_mib": 64}, nil)

	w.Driver.Fail(vmmfake.StepSave, vmmfake.ErrInjected)
	a.refused("vm_fork", map[string]any{"vm": "one", "name": "two"}, "nothing of two was kept")
	w.Driver.Fail(vmmfake.StepSave, nil)
	a.must("vm_fork", map[string]any{"vm": "one", "name": "two"}, nil)

	a.refused("vm_fork", map[string]any{"vm": "two", "name": "three"}, "already has 2 VM(s) (one, two), its limit (--max-vms 2); delete one with vm_delete first")
	a.refused("vm_create", map[string]any{"name": "three", "disk_mib": 64}, "its limit (--max-vms 2)")
	if _, err := w.cl.VM(context.Background(), "three"); err == nil {
		t.Error("a fork past the limit was made")
	}
	a.must("vm_delete", map[string]any{"vm": "one"}, nil)
	a.must("vm_fork", map[string]any{"vm": "two", "name": "three"}, nil)
}
