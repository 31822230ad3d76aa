package client

import (
	"context"
	"strconv"

	"banger/api"
)

// VMStats returns a VM's newest sample and up to history earlier ones
// (all of them when history < 0).
func (c *Client) VMStats(ctx context.Context, name string, history int) (api.VMStats, error) {
	q := ""
	switch {
	case history < 0:
		q = "?history=all"
	case history > 0:
		q = "?history=" + strconv.Itoa(history)
	}
	var out api.VMStats
	return out, c.call(ctx, "GET", "/vms/"+esc(name)+"/stats"+q, nil, &out)
}

// UpdateVM changes a VM's settings.
func (c *Client) UpdateVM(ctx context.Context, name string, req api.UpdateVMRequest) (api.VM, error) {
	var out api.VM
	return out, c.call(ctx, "PATCH", "/vms/"+esc(name), req, &out)
}
