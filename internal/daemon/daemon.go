// Package daemon is banger's service: a thin facade that builds the
// services that own the state, wires them together, serves status and the
// event log, and closes them in reverse order. It knows nothing of HTTP;
// internal/server and internal/web wrap it.
//
//   - vms: the VM manager (claims, live table, boot, stop, reconcile);
//   - images: images, pulls, builds, prune;
//   - defaultimage: makes the default image from images and kernels;
//   - kernels: the kernel catalog, pulls, local kernels;
//   - guestops: sessions, exec bridges, workspaces, ports, auth sync;
//   - monitor: stats, pollers, auto-stop.
//
// Each service declares the small interface it needs of the others; no
// lock is held across services.
package daemon

import (
	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/config"
	"banger/internal/daemon/defaultimage"
	"banger/internal/daemon/guestops"
	"banger/internal/daemon/images"
	"banger/internal/daemon/kernels"
	"banger/internal/daemon/monitor"
	"banger/internal/daemon/vms"
	"banger/internal/paths"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/version"
	"banger/internal/vmm"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Options are what a Daemon needs. Every field is required unless noted.
type Options struct {
	Layout paths.Layout
	Config config.Config
	Store  *store.Store
	Logger *slog.Logger
	// HTTPClient downloads kernels and catalogs; nil means http.DefaultClient.
	HTTPClient *http.Client
	// WebURL is shown by status when the web UI is enabled (optional);
	// WebLoginURL, the URL with the UI's secret, only by WebLogin;
	// WebExposed says it listens beyond loopback.
	WebURL      string
	WebLoginURL string
	WebExposed  bool
	// Driver runs VMs.
	Driver vmm.Driver
	// Network leases addresses and TAPs; nil runs VMs without a network.
	Network vms.Network
	// AgentBinary is the guest agent written into every VM.
	AgentBinary string
	// SSHPublicKey is the user's banger key, authorised in every guest.
	SSHPublicKey string
	// BootTimeout overrides the wait for a guest agent (optional).
	BootTimeout time.Duration
	// StopTimeouts override vmm.DefaultStopTimeouts (optional).
	StopTimeouts *vmm.StopTimeouts
	// IdleCPUPercent is the guest CPU share under which a VM counts as
	// idle for auto-stop; 0 means monitor.DefaultIdleCPUPercent (optional).
	IdleCPUPercent float64
}

// Daemon is the running service. The services' operations are its
// methods (embedded); it adds status, the event log and Close.
type Daemon struct {
	*vms.Manager
	*images.Service
	*guestops.Ops
	*monitor.Monitor

	kernels  *kernels.Service
	defaults *defaultimage.Maker

	layout     paths.Layout
	store      *store.Store
	events     *eventLog
	webURL     string
	webLogin   string
	webExposed bool
	started    time.Time
}

// New builds the services, removes what a crash left, reconciles VMs
// with their processes and starts the pollers.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	d := &Daemon{
		layout: opts.Layout, store: opts.Store, webURL: opts.WebURL, webLogin: opts.WebLoginURL, webExposed: opts.WebExposed,
		started: time.Now(),
		events:  &eventLog{store: opts.Store, log: opts.Logger},
	}
	d.Manager = vms.New(vms.Options{
		Layout: opts.Layout, Config: opts.Config, Store: opts.Store, Logger: opts.Logger, Events: d.events,
		Images: imagesOf{d}, Driver: opts.Driver, Network: opts.Network,
		AgentBinary: opts.AgentBinary, SSHPublicKey: opts.SSHPublicKey,
		OnBoot:      func(ctx context.Context, vm string, cl *agentproto.Client) { d.Ops.SyncAuth(ctx, vm, cl) },
		BootTimeout: opts.BootTimeout, StopTimeouts: opts.StopTimeouts,
	})
	d.kernels = kernels.New(kernels.Options{
		Layout: opts.Layout, Config: opts.Config, Store: opts.Store, Logger: opts.Logger, Events: d.events,
		HTTPClient: opts.HTTPClient,
	})
	d.Service = images.New(images.Options{
		Layout: opts.Layout, Config: opts.Config, Store: opts.Store, Logger: opts.Logger, Events: d.events,
		VMs: buildersOf{d.Manager}, Kernels: d.kernels, VMM: opts.Driver.Name(), HTTPClient: opts.HTTPClient,
	})
	d.defaults = defaultimage.New(defaultimage.Options{
		Layout: opts.Layout, Config: opts.Config, Logger: opts.Logger, Events: d.events,
		Images: d.Service, Kernels: d.kernels, VMM: opts.Driver.Name(),
	})
	d.Ops = guestops.New(guestops.Options{Layout: opts.Layout, Logger: opts.Logger, Events: d.events, VMs: d.Manager})
	if err := d.Service.Sweep(ctx); err != nil {
		d.closeServices()
		return nil, fmt.Errorf("reconciling state: %w", err)
	}
	if err := d.kernels.Sweep(ctx); err != nil {
		d.closeServices()
		return nil, fmt.Errorf("reconciling state: %w", err)
	}
	if err := d.Manager.Reconcile(ctx); err != nil {
		d.closeServices()
		return nil, fmt.Errorf("reconciling state: %w", err)
	}
	d.events.Event(ctx, "info", "daemon", fmt.Sprintf("bangerd %s started (pid %d)", version.String(), os.Getpid()))
	d.Monitor = monitor.New(monitor.Options{
		Config: opts.Config, Logger: opts.Logger, Events: d.events, VMs: d.Manager, Execs: d.Ops,
		Driver: opts.Driver, IdleCPUPercent: opts.IdleCPUPercent,
	})
	return d, nil
}

// Close stops the services in the reverse order of their start and waits
// for every goroutine they started and every operation in flight (whose
// requests the API server has cancelled by then); VMs keep running.
func (d *Daemon) Close() {
	if d.Monitor != nil {
		d.Monitor.Close()
	}
	d.closeServices()
}

func (d *Daemon) closeServices() {
	d.Ops.Close()
	d.defaults.Close()
	d.Service.Close()
	d.kernels.Close()
	d.Manager.Close()
}

// Kernels lists locally stored kernels.
func (d *Daemon) Kernels(ctx context.Context) ([]api.Kernel, error) { return d.kernels.Kernels(ctx) }

// Kernel returns one local kernel.
func (d *Daemon) Kernel(ctx context.Context, name string) (api.Kernel, error) {
	return d.kernels.Kernel(ctx, name)
}

// Catalog returns the kernels on offer.
func (d *Daemon) Catalog(ctx context.Context) (api.Catalog, error) { return d.kernels.Catalog(ctx) }

// PullKernel downloads a catalog kernel, verifies it and records it.
func (d *Daemon) PullKernel(ctx context.Context, name string, p progress.Func) (api.Kernel, error) {
	return d.kernels.PullKernel(ctx, name, p)
}

// RemoveKernel removes a local kernel.
func (d *Daemon) RemoveKernel(ctx context.Context, name string, force bool) error {
	return d.kernels.RemoveKernel(ctx, name, force)
}

// PullKernelRef pulls a kernel published to an OCI registry.
func (d *Daemon) PullKernelRef(ctx context.Context, req api.KernelPullRequest, p progress.Func) (api.Kernel, error) {
	return d.kernels.PullKernelRef(ctx, req, p)
}

// PublishKernel pushes a kernel to an OCI registry.
func (d *Daemon) PublishKernel(ctx context.Context, name string, req api.KernelPublishRequest, p progress.Func) (api.KernelPublished, error) {
	return d.kernels.PublishKernel(ctx, name, req, p)
}

// KernelTags lists the tags of a kernel repository.
func (d *Daemon) KernelTags(ctx context.Context, repo string, insecure bool) (api.KernelTags, error) {
	return d.kernels.KernelTags(ctx, repo, insecure)
}

// imagesOf lets the VM manager find images (the image service is built
// after it, because builds need the VM manager).
type imagesOf struct{ d *Daemon }

func (i imagesOf) Image(ctx context.Context, name string) (api.Image, error) {
	return i.d.Service.Image(ctx, name)
}

func (i imagesOf) Bootable(ctx context.Context, name string) (api.Image, error) {
	return i.d.Service.Bootable(ctx, name)
}

func (i imagesOf) EnsureDefault(ctx context.Context, name string, p progress.Func) (api.Image, error) {
	return i.d.defaults.Ensure(ctx, name, p)
}

// buildersOf gives image builds their builder VMs.
type buildersOf struct{ m *vms.Manager }

func (b buildersOf) BootBuilder(ctx context.Context, name string, im api.Image, p progress.Func) (images.Builder, error) {
	return b.m.BootBuilder(ctx, name, im, p)
}

func (b buildersOf) Discard(ctx context.Context, name string) error { return b.m.Discard(ctx, name) }

// Status reports what the daemon is and holds.
func (d *Daemon) Status(ctx context.Context) (api.DaemonStatus, error) {
	ims, err := d.store.Images(ctx)
	if err != nil {
		return api.DaemonStatus{}, err
	}
	ks, err := d.store.Kernels(ctx)
	if err != nil {
		return api.DaemonStatus{}, err
	}
	vms, err := d.store.VMs(ctx)
	if err != nil {
		return api.DaemonStatus{}, err
	}
	runningVMs := 0
	for _, v := range vms {
		if v.State == api.VMRunning {
			runningVMs++
		}
	}
	return api.DaemonStatus{
		PID:        os.Getpid(),
		Version:    version.String(),
		APIVersion: api.Version,
		Socket:     d.layout.SocketPath,
		WebURL:     d.webURL,
		WebExposed: d.webExposed,
		StateDir:   d.layout.StateDir,
		LogFile:    d.layout.LogFile,
		StartedAt:  d.started,
		Images:     len(ims),
		Kernels:    len(ks),
		VMs:        len(vms),
		VMsRunning: runningVMs,
	}, nil
}

// WebLogin returns the URL that logs a browser into the web UI: the
// secret is not part of Status, whose output users paste.
func (d *Daemon) WebLogin(context.Context) (api.WebLogin, error) {
	if d.webLogin == "" {
		return api.WebLogin{}, errdefs.Unavailable("the web UI is off: set web_listen_addr in the config (see 'banger config') and restart the daemon; 'banger daemon logs' says why it is off")
	}
	return api.WebLogin{URL: d.webLogin}, nil
}

// Events lists the event log.
func (d *Daemon) Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return d.store.Events(ctx, subject, afterID, limit)
}

// eventLog records user-visible events. Failures are logged, not
// returned, because the operation an event describes already happened;
// a request cancelled after its operation still gets its event.
type eventLog struct {
	store *store.Store
	log   *slog.Logger
}

func (e *eventLog) Event(ctx context.Context, level, subject, msg string) {
	e.log.Info(msg, "subject", subject)
	ctx = context.WithoutCancel(ctx)
	err := e.store.Tx(ctx, func(tx *store.Tx) error { return tx.AddEvent(ctx, level, subject, msg) })
	if err != nil {
		e.log.Warn("recording event", "err", err)
	}
}

// VM returns a VM with the host ports forwarded to it.
func (d *Daemon) VM(ctx context.Context, name string) (api.VM, error) {
	v, err := d.Manager.VM(ctx, name)
	if err == nil {
		v.Forwards = d.Ops.Forwards(name)
	}
	return v, err
}
