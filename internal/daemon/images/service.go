// Package images is the image service: images (register, promote,
// delete, pull, build, the default image) and the caches behind them with
// their prune. Kernels come from the kernel service.
//
// Locks: the claims (internal/claims) are never held across a call.
// cacheMu keeps a prune apart from what fills the caches (prune.go);
// it is taken before any claim and may be held across long work.
package images

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/claims"
	"banger/internal/config"
	"banger/internal/paths"
	"banger/internal/progress"
	"banger/internal/store"
)

// VMs is what image builds need from the VM manager: builder VMs.
type VMs interface {
	// BootBuilder creates and boots a VM named name from im, with no
	// host credentials in it.
	BootBuilder(ctx context.Context, name string, im api.Image, p progress.Func) (Builder, error)
	// Discard kills and removes a VM left by an interrupted build.
	Discard(ctx context.Context, name string) error
}

// Builder is a booted builder VM.
type Builder interface {
	Agent() *agentproto.Client
	// Shutdown stops the VM cleanly and returns its disks' paths.
	Shutdown(ctx context.Context) (rootfs, work string, err error)
	// Remove kills the VM if it runs and removes it.
	Remove()
}

// Kernels is what images need from the kernel service.
type Kernels interface {
	// Kernel returns a pulled kernel.
	Kernel(ctx context.Context, name string) (api.Kernel, error)
	// PullKernel pulls a catalog kernel.
	PullKernel(ctx context.Context, name string, p progress.Func) (api.Kernel, error)
}

// Events records what users should read about.
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// Options are what a Service needs; every field is required unless noted.
type Options struct {
	Layout  paths.Layout
	Config  config.Config
	Store   *store.Store
	Logger  *slog.Logger
	Events  Events
	VMs     VMs
	Kernels Kernels
	// VMM names the driver VMs run on (the default image's kernel
	// depends on it).
	VMM string
	// HTTPClient downloads kernels and catalogs; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Service owns images and kernels.
type Service struct {
	layout  paths.Layout
	cfg     config.Config
	store   *store.Store
	log     *slog.Logger
	http    *http.Client
	events  Events
	vms     VMs
	kernels Kernels
	vmm     string

	claims claims.Set // "image/NAME" -> what runs on it

	// cacheMu keeps PruneImages apart from what fills the image caches
	// for images not registered yet: pulls, builds and default-image
	// creation hold it for reading from start to end, a prune for
	// writing (prune.go).
	cacheMu sync.RWMutex
}

// New builds the service.
func New(opts Options) *Service {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	return &Service{
		layout: opts.Layout, cfg: opts.Config, store: opts.Store, log: opts.Logger, http: opts.HTTPClient,
		events: opts.Events, vms: opts.VMs, kernels: opts.Kernels, vmm: opts.VMM,
	}
}

// Sweep removes at start what a crash left: builder VMs of interrupted
// builds, then unreferenced image directories.
func (s *Service) Sweep(ctx context.Context) error {
	s.sweepBuilders(ctx)
	return s.sweepImages(ctx)
}

// claim marks key busy with what, or returns a conflict naming the
// operation already running.
func (s *Service) claim(key, what string) (release func(), err error) {
	return s.claims.Claim(key, what)
}

// Close waits for the operations in flight (pulls, builds, prunes); their
// requests are cancelled by then.
func (s *Service) Close() { s.claims.Drain() }
