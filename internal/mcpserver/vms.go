package mcpserver

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/fsutil"
)

// vmView is what tools say about a VM.
type vmView struct {
	Name      string    `json:"name"`
	Image     string    `json:"image"`
	State     string    `json:"state" jsonschema:"creating, starting, running, paused, stopping, stopped, suspended or error"`
	CPUs      int       `json:"cpus"`
	MemoryMiB int       `json:"memory_mib"`
	DiskMiB   int64     `json:"disk_mib" jsonschema:"size of the work disk mounted at /root"`
	IP        string    `json:"ip,omitempty"`
	Owned     bool      `json:"owned" jsonschema:"this MCP server created the VM"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func view(v api.VM, owned bool) vmView {
	return vmView{
		Name: v.Name, Image: v.Image, State: string(v.State), CPUs: v.CPUs, MemoryMiB: v.MemoryMiB,
		DiskMiB: v.DiskBytes >> 20, IP: v.IP, Owned: owned, LastError: cleanText([]byte(v.LastError)), CreatedAt: v.CreatedAt,
	}
}

type createIn struct {
	Name      string `json:"name,omitempty" jsonschema:"VM name: 1-63 lowercase letters, digits and '-'; generated when omitted"`
	Image     string `json:"image,omitempty" jsonschema:"image to boot; the default image (or the first allowed one) when omitted"`
	CPUs      int    `json:"cpus,omitempty" jsonschema:"virtual CPUs; the daemon's default when omitted"`
	MemoryMiB int    `json:"memory_mib,omitempty" jsonschema:"memory in MiB; the daemon's default when omitted"`
	DiskMiB   int64  `json:"disk_mib,omitempty" jsonschema:"size of the work disk mounted at /root, in MiB; the daemon's default when omitted"`
}

type listOut struct {
	VMs []vmView `json:"vms"`
}

type vmIn struct {
	VM string `json:"vm" jsonschema:"name of the VM"`
}

type deleteOut struct {
	Deleted string `json:"deleted"`
}

func (s *Server) addVMTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "vm_create",
		Description: "Create a sandbox VM and boot it; returns once its guest agent answers (may take a minute; " +
			"progress is reported when the client sends a progress token). The VM has a root shell, /root on its own " +
			"disk, and network access. Delete it with vm_delete when done.",
	}, s.vmCreate)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "vm_list",
		Description: "List the VMs this MCP server may use, with their state.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, s.vmList)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "vm_delete",
		Description: "Delete a VM this MCP server created: stop it (killing it if needed) and remove its disks. Work not exported is lost.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: new(true)},
	}, s.vmDelete)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "vm_pause",
		Description: "Freeze a running VM's CPUs (its memory and processes stay as they are) until vm_resume.",
	}, s.vmPause)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "vm_resume",
		Description: "Thaw a VM that vm_pause froze: its processes carry on where they stopped.",
	}, s.vmResume)
}

func (s *Server) vmCreate(ctx context.Context, req *mcp.CallToolRequest, in createIn) (*mcp.CallToolResult, vmView, error) {
	if in.Name == "" {
		in.Name = generatedName()
	}
	if in.Image == "" && len(s.guard.scope.Images) > 0 {
		in.Image = s.guard.scope.Images[0]
	}
	if in.CPUs < 0 || in.MemoryMiB < 0 || in.DiskMiB < 0 {
		return nil, vmView{}, errdefs.Invalid("cpus, memory_mib and disk_mib must be positive (or omitted for the defaults)")
	}
	if err := s.reserveNew(ctx, in.Name, in.Image); err != nil {
		return nil, vmView{}, err
	}
	vm, err := s.cl.CreateVM(ctx, api.CreateVMRequest{
		Name: in.Name, Image: in.Image, CPUs: in.CPUs, MemoryMiB: in.MemoryMiB, DiskBytes: in.DiskMiB << 20,
	}, progress(ctx, req))
	if err != nil {
		s.guard.release(in.Name)
		return nil, vmView{}, err
	}
	if err := s.guard.created(vm); err != nil {
		return nil, vmView{}, err
	}
	return nil, view(vm, true), nil
}

// generatedName names a VM the agent did not name.
func generatedName() string { return "mcp-" + fsutil.RandomHex()[:8] }

// reserveNew checks that no VM is named name and records it as the
// scope's before a create or fork of image starts (the scope's cap and
// allowed images apply); release undoes it when that fails.
func (s *Server) reserveNew(ctx context.Context, name, img string) error {
	vms, err := s.cl.VMs(ctx)
	if err != nil {
		return err
	}
	for _, v := range vms {
		if v.Name == name {
			return errdefs.Conflict("vm %q already exists; pick another name", name)
		}
	}
	return s.guard.reserve(name, img, vms)
}

func (s *Server) vmList(ctx context.Context, _ *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, listOut, error) {
	vms, err := s.cl.VMs(ctx)
	if err != nil {
		return nil, listOut{}, err
	}
	list, err := s.guard.ownedList(vms)
	if err != nil {
		return nil, listOut{}, err
	}
	out := listOut{VMs: []vmView{}}
	for _, v := range vms {
		mine := owns(list, v)
		if mine || s.guard.scope.AllVMs {
			out.VMs = append(out.VMs, view(v, mine))
		}
	}
	return nil, out, nil
}

func (s *Server) vmDelete(ctx context.Context, _ *mcp.CallToolRequest, in vmIn) (*mcp.CallToolResult, deleteOut, error) {
	if _, _, err := s.vmForUse(ctx, in.VM, true); err != nil {
		return nil, deleteOut{}, err
	}
	if err := s.cl.DeleteVM(ctx, in.VM, true); err != nil {
		return nil, deleteOut{}, err
	}
	return nil, deleteOut{Deleted: in.VM}, s.guard.release(in.VM)
}

func (s *Server) vmPause(ctx context.Context, _ *mcp.CallToolRequest, in vmIn) (*mcp.CallToolResult, vmView, error) {
	_, owned, err := s.vmForUse(ctx, in.VM, false)
	if err != nil {
		return nil, vmView{}, err
	}
	vm, err := s.cl.PauseVM(ctx, in.VM)
	return nil, view(vm, owned), err
}

func (s *Server) vmResume(ctx context.Context, _ *mcp.CallToolRequest, in vmIn) (*mcp.CallToolResult, vmView, error) {
	_, owned, err := s.vmForUse(ctx, in.VM, false)
	if err != nil {
		return nil, vmView{}, err
	}
	vm, err := s.cl.ResumeVM(ctx, in.VM)
	return nil, view(vm, owned), err
}
