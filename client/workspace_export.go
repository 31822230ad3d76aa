package client

import (
	"context"

	"banger/api"
)

// ExportWorkspace brings a guest checkout's work into a host repository
// as a branch, streaming progress to onEvent (may be nil).
func (c *Client) ExportWorkspace(ctx context.Context, vm string, req api.WorkspaceExportRequest, onEvent func(api.Event)) (api.WorkspaceExport, error) {
	var out api.WorkspaceExport
	return out, c.stream(ctx, "POST", "/vms/"+esc(vm)+"/workspace/export", req, &out, onEvent)
}
