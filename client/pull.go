package client

import (
	"context"

	"banger/api"
)

// PullImage pulls an OCI image into a managed image, streaming progress
// to onEvent (may be nil). Canceling ctx cancels the pull.
func (c *Client) PullImage(ctx context.Context, req api.PullImageRequest, onEvent func(api.Event)) (api.Image, error) {
	var out api.Image
	return out, c.stream(ctx, "POST", "/images/pull", req, &out, onEvent)
}

// BuildImage builds an image in builder VMs, streaming progress to
// onEvent (may be nil). Canceling ctx cancels the build.
func (c *Client) BuildImage(ctx context.Context, req api.BuildImageRequest, onEvent func(api.Event)) (api.ImageBuild, error) {
	var out api.ImageBuild
	return out, c.stream(ctx, "POST", "/images/build", req, &out, onEvent)
}
