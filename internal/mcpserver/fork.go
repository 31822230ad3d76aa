package mcpserver

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
)

type forkIn struct {
	VM   string `json:"vm" jsonschema:"name of the VM to fork (running, paused or suspended)"`
	Name string `json:"name,omitempty" jsonschema:"the new VM's name: 1-63 lowercase letters, digits and '-'; generated when omitted"`
}

func (s *Server) addForkTool() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "vm_fork",
		Description: "Fork a VM: a new VM that starts from the source's memory and disks as they are now (every process " +
			"and file where it was) with its own name, address and identity; the source carries on unchanged (a running " +
			"one is paused only while it is copied). Use it to try something risky or several ideas side by side. " +
			"The new VM counts toward this server's VM limit; delete it with vm_delete when done.",
	}, s.vmFork)
}

// vmFork forks a VM the scope may use into a new VM the scope owns, of
// the source's image, so the scope's cap and allowed images hold.
func (s *Server) vmFork(ctx context.Context, req *mcp.CallToolRequest, in forkIn) (*mcp.CallToolResult, vmView, error) {
	src, _, err := s.vmForUse(ctx, in.VM, false)
	if err != nil {
		return nil, vmView{}, err
	}
	if in.Name == "" {
		in.Name = generatedName()
	}
	if err := s.reserveNew(ctx, in.Name, src.Image); err != nil {
		return nil, vmView{}, err
	}
	vm, err := s.cl.ForkVM(ctx, src.Name, api.ForkVMRequest{Name: in.Name}, progress(ctx, req))
	if err != nil {
		s.guard.release(in.Name)
		return nil, vmView{}, err
	}
	if err := s.guard.created(vm); err != nil {
		return nil, vmView{}, err
	}
	return nil, view(vm, true), nil
}
