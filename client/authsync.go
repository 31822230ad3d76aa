package client

import (
	"context"

	"banger/api"
)

// AuthSync copies the host's coding-agent credentials into a running VM:
// tools, or the VM's auth_sync list when tools is empty (every tool when
// that list is empty too).
func (c *Client) AuthSync(ctx context.Context, vm string, tools []string) (api.AuthSync, error) {
	var out api.AuthSync
	return out, c.call(ctx, "POST", "/vms/"+esc(vm)+"/auth-sync", api.AuthSyncRequest{Tools: tools}, &out)
}
