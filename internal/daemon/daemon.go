// Package daemon is banger's service: the operations behind every API
// call, grouped by noun (images.go, kernels.go, ...). It knows nothing of
// HTTP; internal/server and internal/web wrap it.
package daemon

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"banger/internal/api"
	"banger/internal/config"
	"banger/internal/errdefs"
	"banger/internal/paths"
	"banger/internal/sshx"
	"banger/internal/store"
	"banger/internal/version"
	"banger/internal/vmm"
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
	// WebExposed says it listens beyond loopback.
	WebURL     string
	WebExposed bool
	// Driver runs VMs.
	Driver vmm.Driver
	// Network leases addresses and TAPs; nil runs VMs without a network.
	Network Network
	// AgentBinary is the guest agent written into every VM.
	AgentBinary string
	// SSHPublicKey is the user's banger key, authorised in every guest.
	SSHPublicKey string
	// BootTimeout overrides the wait for a guest agent (optional).
	BootTimeout time.Duration
	// StopTimeouts override vmm.DefaultStopTimeouts (optional).
	StopTimeouts *vmm.StopTimeouts
	// IdleCPUPercent is the guest CPU share under which a VM counts as
	// idle for auto-stop; 0 means DefaultIdleCPUPercent (optional).
	IdleCPUPercent float64
}

// Daemon is the running service.
type Daemon struct {
	layout     paths.Layout
	cfg        config.Config
	store      *store.Store
	log        *slog.Logger
	http       *http.Client
	webURL     string
	webExposed bool
	started    time.Time

	busyMu sync.Mutex
	busy   map[string]string // "image/NAME" -> what is running on it

	builders sync.Map // names of builder VMs (image build): no auth sync

	// cacheMu keeps PruneImages apart from what fills the image caches
	// for images not registered yet: pulls, builds and default-image
	// creation hold it for reading from start to end, a prune for
	// writing (prune.go).
	cacheMu sync.RWMutex

	driver       vmm.Driver
	net          Network
	hosts        *sshx.KnownHosts
	agentBinary  string
	sshPub       string
	bootWait     time.Duration
	stopTimeouts vmm.StopTimeouts

	life context.Context // the daemon's lifetime: VM watchers live in it
	stop context.CancelFunc

	runMu sync.Mutex
	run   map[string]*running // live VMs by name
	execs map[string]int      // open exec bridges (vm exec, vm acp) by VM

	stats   *statsBook     // samples and idle clocks (stats.go, autostop.go)
	idleCPU float64        // see Options.IdleCPUPercent
	pollers sync.WaitGroup // stats and metrics pollers, auto-stops in flight
}

// New builds the daemon and reconciles on-disk state with the database:
// leftovers of operations a crash interrupted are removed.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	d := &Daemon{
		layout:     opts.Layout,
		cfg:        opts.Config,
		store:      opts.Store,
		log:        opts.Logger,
		http:       opts.HTTPClient,
		webURL:     opts.WebURL,
		webExposed: opts.WebExposed,
		started:    time.Now(),
		busy:       map[string]string{},
		driver:     opts.Driver,
		net:        opts.Network,
		hosts: &sshx.KnownHosts{Path: filepath.Join(opts.Layout.SSHDir, "known_hosts"),
			Config: filepath.Join(opts.Layout.SSHDir, "config"), Key: opts.Config.SSHKey(opts.Layout.ConfigDir)},
		agentBinary:  opts.AgentBinary,
		sshPub:       opts.SSHPublicKey,
		bootWait:     opts.BootTimeout,
		stopTimeouts: vmm.DefaultStopTimeouts,
		run:          map[string]*running{},
		stats:        newStatsBook(),
		idleCPU:      cmp.Or(opts.IdleCPUPercent, DefaultIdleCPUPercent),
	}
	if opts.StopTimeouts != nil {
		d.stopTimeouts = *opts.StopTimeouts
	}
	d.life, d.stop = context.WithCancel(context.Background())
	if err := d.reconcile(ctx); err != nil {
		return nil, fmt.Errorf("reconciling state: %w", err)
	}
	d.event(ctx, "info", "daemon", fmt.Sprintf("bangerd %s started (pid %d)", version.String(), os.Getpid()))
	d.startPollers()
	return d, nil
}

func (d *Daemon) reconcile(ctx context.Context) error {
	d.sweepBuilders(ctx)
	if err := d.sweepImages(ctx); err != nil {
		return err
	}
	if err := d.sweepKernels(ctx); err != nil {
		return err
	}
	if err := d.writeSSHConfig(); err != nil {
		return err
	}
	if d.net != nil {
		if err := d.net.CheckConfig(ctx, d.vmAlive(ctx)); err != nil {
			return err
		}
	}
	return d.reconcileVMs(ctx)
}

// Close stops watching VMs and drops agent connections; VMs keep running.
func (d *Daemon) Close() {
	d.stop()
	d.pollers.Wait()
	d.runMu.Lock()
	defer d.runMu.Unlock()
	for _, r := range d.run {
		if r.agent != nil {
			r.agent.Close()
		}
	}
}

// writeSSHConfig writes the ssh_config snippet for 'ssh <name>.vm'; the
// known_hosts file rewrites it as VMs are pinned and forgotten.
func (d *Daemon) writeSSHConfig() error { return d.hosts.WriteConfig() }

// Status reports what the daemon is and holds.
func (d *Daemon) Status(ctx context.Context) (api.DaemonStatus, error) {
	ims, err := d.store.Read().Images(ctx)
	if err != nil {
		vms, err := d.store.Read().VMs(ctx)
		if err != nil {
			return api.DaemonStatus{}, err
		}
		runningVMs := 0
		for _, v := range vms {
			if v.State == api.VMRunning {
				runningVMs++
			}
		}
		return api.DaemonStatus{}, err
	}
	ks, err := d.store.Read().Kernels(ctx)
	if err != nil {
		vms, err := d.store.Read().VMs(ctx)
		if err != nil {
			return api.DaemonStatus{}, err
		}
		runningVMs := 0
		for _, v := range vms {
			if v.State == api.VMRunning {
				runningVMs++
			}
		}
		return api.DaemonStatus{}, err
	}
	vms, err := d.store.Read().VMs(ctx)
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

// Events lists the event log.
func (d *Daemon) Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return d.store.Read().Events(ctx, subject, afterID, limit)
}

// event records a user-visible event; failures are logged, not returned,
// because the operation it describes already happened.
func (d *Daemon) event(ctx context.Context, level, subject, msg string) {
	d.log.Info(msg, "subject", subject)
	err := d.store.Tx(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.AddEvent(ctx, level, subject, msg) })
	if err != nil {
		d.log.Warn("recording event", "err", err)
	}
}

// claim marks key busy with what, or returns a conflict naming the
// operation already running.
func (d *Daemon) claim(key, what string) (release func(), err error) {
	d.busyMu.Lock()
	defer d.busyMu.Unlock()
	if cur, ok := d.busy[key]; ok {
		return nil, errdefs.Conflict("%s is busy (%s in progress); wait for it to finish", key, cur)
	}
	d.busy[key] = what
	return func() {
		d.busyMu.Lock()
		delete(d.busy, key)
		d.busyMu.Unlock()
	}, nil
}
