// Package defaultimage makes the default image the first time a VM needs
// it: a kernel that suits the VMM and a Debian devbox root filesystem,
// from an OCI pull and an image build when a registry answers, else with
// debootstrap from the host's Debian mirror. It orchestrates the image and
// kernel services and owns nothing but the names it is making.
package defaultimage

import (
	"context"
	"log/slog"

	"banger/api"
	"banger/internal/claims"
	"banger/internal/config"
	"banger/internal/paths"
	"banger/internal/progress"
)

// Images is what making the default image needs from the image service.
type Images interface {
	Image(ctx context.Context, name string) (api.Image, error)
	// HoldCaches keeps a prune away until release is called.
	HoldCaches(p progress.Func) (release func())
	// PullHeld and BuildHeld pull and build for a caller that holds the
	// caches.
	PullHeld(ctx context.Context, req api.PullImageRequest, p progress.Func) (api.Image, error)
	BuildHeld(ctx context.Context, req api.BuildImageRequest, p progress.Func) (api.ImageBuild, error)
	// Store copies im's files into a managed image of its name.
	Store(ctx context.Context, im api.Image, p progress.Func) (api.Image, error)
}

// Kernels is what it needs from the kernel service.
type Kernels interface {
	Kernel(ctx context.Context, name string) (api.Kernel, error)
	PullKernel(ctx context.Context, name string, p progress.Func) (api.Kernel, error)
}

// Events records what users should read about.
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// Options are what a Maker needs; every field is required.
type Options struct {
	Layout  paths.Layout
	Config  config.Config
	Logger  *slog.Logger
	Events  Events
	Images  Images
	Kernels Kernels
	// VMM names the driver VMs run on: it decides the kernel.
	VMM string
}

// Maker makes the default image.
type Maker struct {
	layout  paths.Layout
	cfg     config.Config
	log     *slog.Logger
	events  Events
	images  Images
	kernels Kernels
	vmm     string

	busy claims.Set // default images being made, by name
}

// New builds the maker.
func New(opts Options) *Maker {
	return &Maker{
		layout: opts.Layout, cfg: opts.Config, log: opts.Logger, events: opts.Events,
		images: opts.Images, kernels: opts.Kernels, vmm: opts.VMM, busy: claims.Set{Prefix: "default-image/"},
	}
}

// claim marks the default image name as being made, or returns a
// conflict when it already is.
func (s *Maker) claim(name string) (release func(), err error) {
	return s.busy.Claim(name, "making the default image")
}

// Close waits for a default image being made; its request is cancelled by
// then.
func (s *Maker) Close() { s.busy.Drain() }
