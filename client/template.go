package client

import (
	"context"

	"banger/api"
)

// Templates lists the templates (a VM's state kept to start VMs warm).
func (c *Client) Templates(ctx context.Context) ([]api.Template, error) {
	var out []api.Template
	return out, c.call(ctx, "GET", "/templates", nil, &out)
}

// Template returns one template.
func (c *Client) Template(ctx context.Context, name string) (api.Template, error) {
	var out api.Template
	return out, c.call(ctx, "GET", "/templates/"+esc(name), nil, &out)
}

// DeleteTemplate removes a template.
func (c *Client) DeleteTemplate(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/templates/"+esc(name), nil, nil)
}

// SnapshotVM keeps a running VM's state and disks as template name of
// its image.
func (c *Client) SnapshotVM(ctx context.Context, vm, name string, onEvent func(api.Event)) (api.Template, error) {
	var out api.Template
	return out, c.stream(ctx, "POST", "/vms/"+esc(vm)+"/template", api.SnapshotImageRequest{Name: name}, &out, onEvent)
}
