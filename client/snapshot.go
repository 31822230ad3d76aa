package client

import (
	"context"

	"banger/api"
)

// PauseVM freezes a running VM's vCPUs.
func (c *Client) PauseVM(ctx context.Context, name string) (api.VM, error) {
	var out api.VM
	return out, c.call(ctx, "POST", "/vms/"+esc(name)+"/pause", nil, &out)
}

// ResumeVM thaws a paused VM.
func (c *Client) ResumeVM(ctx context.Context, name string) (api.VM, error) {
	var out api.VM
	return out, c.call(ctx, "POST", "/vms/"+esc(name)+"/resume", nil, &out)
}

// SuspendVM saves a VM's memory to disk and ends its process.
func (c *Client) SuspendVM(ctx context.Context, name string, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms/"+esc(name)+"/suspend", nil, &out, onEvent)
}

// StartVMCold boots a VM fresh, discarding the state a suspend saved.
func (c *Client) StartVMCold(ctx context.Context, name string, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms/"+esc(name)+"/start?cold=true", nil, &out, onEvent)
}
