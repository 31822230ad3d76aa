// Package kernels is the kernel service: the catalog (built in, plus
// kernel_catalog_url), pulls with verification, the local kernels and
// their removal.
//
// Locks: the claims (internal/claims) are never held across a call.
package kernels

import (
	"context"
	"log/slog"
	"net/http"

	"banger/internal/claims"
	"banger/internal/config"
	"banger/internal/paths"
	"banger/internal/store"
)

// Events records what users should read about.
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// Options are what a Service needs; every field is required unless noted.
type Options struct {
	Layout paths.Layout
	Config config.Config
	Store  *store.Store
	Logger *slog.Logger
	Events Events
	// HTTPClient downloads kernels and catalogs; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Service owns kernels.
type Service struct {
	layout paths.Layout
	cfg    config.Config
	store  *store.Store
	log    *slog.Logger
	http   *http.Client
	events Events

	claims claims.Set // kernel name -> what runs on it
}

// New builds the service.
func New(opts Options) *Service {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	return &Service{
		layout: opts.Layout, cfg: opts.Config, store: opts.Store, log: opts.Logger, http: opts.HTTPClient,
		events: opts.Events, claims: claims.Set{Prefix: "kernel/"},
	}
}

// Sweep removes at start what a crash left: unreferenced kernel
// directories and stale partial downloads.
func (s *Service) Sweep(ctx context.Context) error { return s.sweepKernels(ctx) }

// claim marks a kernel busy with what, or returns a conflict naming the
// operation already running.
func (s *Service) claim(name, what string) (release func(), err error) {
	return s.claims.Claim(name, what)
}

// Close waits for the pulls in flight; their requests are cancelled by
// then.
func (s *Service) Close() { s.claims.Drain() }
