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

// SetAuthSync changes which tools' credentials a VM receives at each
// boot; empty tools means none.
func (c *Client) SetAuthSync(ctx context.Context, vm string, tools []string) (api.VM, error) {
	if tools == nil {
		tools = []string{}
	}
	var out api.VM
	return out, c.call(ctx, "PUT", "/vms/"+esc(vm)+"/auth-sync", api.SetAuthSyncRequest{Tools: &tools}, &out)
}
