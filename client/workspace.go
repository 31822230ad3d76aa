package client

import (
	"context"

	"banger/api"
)

// PrepareWorkspace copies a host git checkout (req.Path, absolute) into a
// running VM, streaming progress to onEvent (may be nil). Canceling ctx
// cancels the copy.
func (c *Client) PrepareWorkspace(ctx context.Context, vm string, req api.WorkspacePrepareRequest, onEvent func(api.Event)) (api.Workspace, error) {
	var out api.Workspace
	return out, c.stream(ctx, "POST", "/vms/"+esc(vm)+"/workspace", req, &out, onEvent)
}
