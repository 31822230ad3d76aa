package client

import (
	"context"
	"net/url"
	"strconv"

	"banger/api"
)

// Status asks the daemon what it is and holds.
func (c *Client) Status(ctx context.Context) (api.DaemonStatus, error) {
	var st api.DaemonStatus
	return st, c.call(ctx, "GET", "/daemon", nil, &st)
}

// Shutdown asks the daemon to exit; running VMs keep running.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.call(ctx, "POST", "/daemon/shutdown", nil, nil)
}

// Events lists the event log (subject "" for all).
func (c *Client) Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error) {
	q := url.Values{}
	if subject != "" {
		q.Set("subject", subject)
	}
	q.Set("after", strconv.FormatInt(afterID, 10))
	q.Set("limit", strconv.Itoa(limit))
	var out []api.LogEntry
	return out, c.call(ctx, "GET", "/events?"+q.Encode(), nil, &out)
}

// Images lists registered images.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out []api.Image
	return out, c.call(ctx, "GET", "/images", nil, &out)
}

// Image returns one image.
func (c *Client) Image(ctx context.Context, name string) (api.Image, error) {
	var out api.Image
	return out, c.call(ctx, "GET", "/images/"+esc(name), nil, &out)
}

// RegisterImage records an image made of host files.
func (c *Client) RegisterImage(ctx context.Context, req api.RegisterImageRequest) (api.Image, error) {
	var out api.Image
	return out, c.call(ctx, "POST", "/images", req, &out)
}

// PromoteImage copies an image's files into daemon-owned storage.
func (c *Client) PromoteImage(ctx context.Context, name string, onEvent func(api.Event)) (api.Image, error) {
	var out api.Image
	return out, c.stream(ctx, "POST", "/images/"+esc(name)+"/promote", nil, &out, onEvent)
}

// DeleteImage removes an image.
func (c *Client) DeleteImage(ctx context.Context, name string, force bool) error {
	return c.call(ctx, "DELETE", "/images/"+esc(name)+forceQuery(force), nil, nil)
}

// PruneImages removes what the image caches hold for images that are
// gone. It waits for the pulls and builds in progress.
func (c *Client) PruneImages(ctx context.Context) (api.PruneReport, error) {
	var out api.PruneReport
	return out, c.call(ctx, "POST", "/images/prune", nil, &out)
}

// Kernels lists local kernels.
func (c *Client) Kernels(ctx context.Context) ([]api.Kernel, error) {
	var out []api.Kernel
	return out, c.call(ctx, "GET", "/kernels", nil, &out)
}

// Kernel returns one local kernel.
func (c *Client) Kernel(ctx context.Context, name string) (api.Kernel, error) {
	var out api.Kernel
	return out, c.call(ctx, "GET", "/kernels/"+esc(name), nil, &out)
}

// Catalog lists the kernels available to pull.
func (c *Client) Catalog(ctx context.Context) (api.Catalog, error) {
	var out api.Catalog
	return out, c.call(ctx, "GET", "/kernels/catalog", nil, &out)
}

// PullKernel downloads a catalog kernel.
func (c *Client) PullKernel(ctx context.Context, name string, onEvent func(api.Event)) (api.Kernel, error) {
	var out api.Kernel
	return out, c.stream(ctx, "POST", "/kernels/"+esc(name)+"/pull", nil, &out, onEvent)
}

// RemoveKernel deletes a local kernel.
func (c *Client) RemoveKernel(ctx context.Context, name string, force bool) error {
	return c.call(ctx, "DELETE", "/kernels/"+esc(name)+forceQuery(force), nil, nil)
}

// PullKernelRef pulls a kernel published to an OCI registry.
func (c *Client) PullKernelRef(ctx context.Context, req api.KernelPullRequest, onEvent func(api.Event)) (api.Kernel, error) {
	var out api.Kernel
	return out, c.stream(ctx, "POST", "/kernels/pull", req, &out, onEvent)
}

// PublishKernel pushes a kernel to an OCI registry.
func (c *Client) PublishKernel(ctx context.Context, name string, req api.KernelPublishRequest, onEvent func(api.Event)) (api.KernelPublished, error) {
	var out api.KernelPublished
	return out, c.stream(ctx, "POST", "/kernels/"+esc(name)+"/publish", req, &out, onEvent)
}

// KernelTags lists the tags of a kernel repository in a registry.
func (c *Client) KernelTags(ctx context.Context, repo string, insecure bool) (api.KernelTags, error) {
	var out api.KernelTags
	q := url.Values{"repo": {repo}}
	if insecure {
		q.Set("insecure", "true")
	}
	return out, c.call(ctx, "GET", "/kernels/tags?"+q.Encode(), nil, &out)
}

// WebLogin returns the URL that logs a browser into the web UI.
func (c *Client) WebLogin(ctx context.Context) (api.WebLogin, error) {
	var out api.WebLogin
	return out, c.call(ctx, "GET", "/daemon/web-login", nil, &out)
}
