package client

import (
	"context"
	"net/url"
	"strconv"

	"banger/api"
)

// Forward starts forwarding host ports to a VM. With req.Detach the
// daemon keeps them and the call returns them; otherwise onEvent hears of
// each once it listens, and the call returns when ctx ends (the forwards
// stop) or they end on their own (an error says why).
func (c *Client) Forward(ctx context.Context, vm string, req api.ForwardRequest, onEvent func(api.Event)) ([]api.Forward, error) {
	var out []api.Forward
	path := "/vms/" + esc(vm) + "/forwards"
	if req.Detach {
		return out, c.call(ctx, "POST", path, req, &out)
	}
	return out, c.stream(ctx, "POST", path, req, &out, onEvent)
}

// Forwards lists a VM's forwards.
func (c *Client) Forwards(ctx context.Context, vm string) ([]api.Forward, error) {
	var out []api.Forward
	return out, c.call(ctx, "GET", "/vms/"+esc(vm)+"/forwards", nil, &out)
}

// StopForwards stops a VM's forwards on hostPorts, or all of them.
func (c *Client) StopForwards(ctx context.Context, vm string, hostPorts []int) ([]api.Forward, error) {
	q := url.Values{}
	for _, p := range hostPorts {
		q.Add("port", strconv.Itoa(p))
	}
	path := "/vms/" + esc(vm) + "/forwards"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []api.Forward
	return out, c.call(ctx, "DELETE", path, nil, &out)
}
