package client

import (
	"context"

	"banger/api"
)

// ForkVM makes a twin of the running, paused or suspended VM src, named
// req.Name, streaming progress to onEvent.
func (c *Client) ForkVM(ctx context.Context, src string, req api.ForkVMRequest, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms/"+esc(src)+"/fork", req, &out, onEvent)
}
