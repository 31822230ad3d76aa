// Package vms is the VM manager: it owns every VM's lifecycle (create,
// boot, stop, delete, reconcile at start), the claims that keep two
// operations off one VM, and the live table of running VMs (their VMM
// handle, agent connection and exit watcher).
//
// Locks: the claims (internal/claims) and liveMu, which guards the live
// table, are never held together, nor across a call that can block (a
// database transaction, a driver call, a guest call).
package vms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/claims"
	"banger/internal/config"
	"banger/internal/paths"
	"banger/internal/progress"
	"banger/internal/sshx"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Images is what VMs need from the image service.
type Images interface {
	// Image returns a registered image.
	Image(ctx context.Context, name string) (api.Image, error)
	// Bootable returns a registered image whose files a VM can boot.
	Bootable(ctx context.Context, name string) (api.Image, error)
	// EnsureDefault makes the default image when it is not registered.
	EnsureDefault(ctx context.Context, name string, p progress.Func) (api.Image, error)
}

// Events records what users should read about (banger events).
type Events interface {
	Event(ctx context.Context, level, subject, msg string)
}

// BootHook runs once a booting VM's agent answers, before the VM counts
// as running (the auth sync). Builder VMs skip it.
type BootHook func(ctx context.Context, vm string, cl *agentproto.Client)

// Options are what a Manager needs; every field is required unless noted.
type Options struct {
	Layout paths.Layout
	Config config.Config
	Store  *store.Store
	Logger *slog.Logger
	Events Events
	Images Images
	Driver vmm.Driver
	// Network leases addresses and TAPs; nil runs VMs without a network.
	Network Network
	// AgentBinary is the guest agent written into every VM.
	AgentBinary string
	// SSHPublicKey is the user's banger key, authorised in every guest.
	SSHPublicKey string
	// OnBoot runs for every VM but builders once its agent answers (optional).
	OnBoot BootHook
	// BootTimeout overrides the wait for a guest agent (optional).
	BootTimeout time.Duration
	// StopTimeouts override vmm.DefaultStopTimeouts (optional).
	StopTimeouts *vmm.StopTimeouts
}

// Manager owns the VMs.
type Manager struct {
	layout       paths.Layout
	cfg          config.Config
	store        *store.Store
	log          *slog.Logger
	events       Events
	images       Images
	driver       vmm.Driver
	net          Network
	hosts        *sshx.KnownHosts
	agentBinary  string
	sshPub       string
	onBoot       BootHook
	bootWait     time.Duration
	stopTimeouts vmm.StopTimeouts

	life context.Context // the manager's lifetime: exit watchers live in it
	stop context.CancelFunc

	claims claims.Set // VM name -> the operation that holds it

	// templates keeps template deletes apart from the creates that read
	// a template until their restore has its files (restoredone.go);
	// tmplClaims keeps two saves of one name apart.
	templates  sync.RWMutex
	tmplClaims claims.Set

	// spares are the goroutines making templates' spare disks (spare.go).
	spareMu   sync.Mutex
	refilling map[string]bool
	spares    sync.WaitGroup
	// remaps is the goroutine mapping older templates' memory at start
	// (templateremap.go); it starts under spareMu too.
	remaps sync.WaitGroup

	liveMu   sync.Mutex
	live     map[string]*running // running VMs by name
	watchers sync.WaitGroup      // exit watchers; Close waits for them
}

// New builds the manager. Nothing runs until Reconcile.
func New(opts Options) *Manager {
	m := &Manager{
		layout: opts.Layout,
		cfg:    opts.Config,
		store:  opts.Store,
		log:    opts.Logger,
		events: opts.Events,
		images: opts.Images,
		driver: opts.Driver,
		net:    opts.Network,
		hosts: &sshx.KnownHosts{Path: filepath.Join(opts.Layout.SSHDir, "known_hosts"),
			Config: filepath.Join(opts.Layout.SSHDir, "config"), Key: opts.Config.SSHKey(opts.Layout.ConfigDir)},
		agentBinary:  opts.AgentBinary,
		sshPub:       opts.SSHPublicKey,
		onBoot:       opts.OnBoot,
		bootWait:     opts.BootTimeout,
		stopTimeouts: *cmp.Or(opts.StopTimeouts, &vmm.DefaultStopTimeouts),
		claims:       claims.Set{Prefix: "vm/"},
		tmplClaims:   claims.Set{Prefix: "template/"},
		live:         map[string]*running{},
		refilling:    map[string]bool{},
	}
	m.life, m.stop = context.WithCancel(context.Background())
	return m
}

// Reconcile brings the database in line with the VMM processes at start:
// it writes the ssh config, refuses network settings changed under
// running VMs, and re-adopts or marks stopped every VM.
func (m *Manager) Reconcile(ctx context.Context) error {
	if err := m.writeSSHConfig(); err != nil {
		return err
	}
	if m.net != nil {
		if err := m.net.CheckConfig(ctx, m.vmAlive(ctx)); err != nil {
			return err
		}
	}
	m.sweepTemplates()
	m.reapMappings(ctx)
	if ts, err := m.Templates(ctx); err == nil {
		for _, t := range ts {
			m.refillSpare(t.Name)
		}
	}
	if err := m.reconcileVMs(ctx); err != nil {
		return err
	}
	// Restore the VMs' egress rules (a restart finds them in place and
	// leaves them as they are).
	if err := m.syncEgress(ctx); err != nil {
		m.log.Warn("restoring egress rules", "err", err)
		m.events.Event(ctx, "warn", "daemon", "egress rules could not be restored: "+err.Error())
	}
	m.mapOlderTemplates(ctx)
	return nil
}

// Close waits for the operations in flight (their requests are cancelled
// by then), stops watching VMs, waits for the watchers and drops agent
// connections; VMs keep running.
func (m *Manager) Close() {
	m.claims.Drain()
	m.tmplClaims.Drain()
	// No spare copy or mapping starts once life is over (refillSpare
	// and mapOlderTemplates check it under spareMu), so the waits below
	// see every one that did.
	m.spareMu.Lock()
	m.stop()
	m.spareMu.Unlock()
	m.spares.Wait()
	m.remaps.Wait()
	m.watchers.Wait()
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	for _, r := range m.live {
		if r.agent != nil {
			r.agent.Close()
		}
	}
}

// op is an operation that holds a VM's claim.
type op string

const (
	opCreate op = "create"
	opStart  op = "start"
	opStop   op = "stop"
	opDelete op = "delete"
	opUpdate op = "update"
	opBuild  op = "build"
)

// claim marks the VM busy with what, or returns a conflict naming the
// operation already running.
func (m *Manager) claim(name string, what op) (release func(), err error) {
	return m.claims.Claim(name, string(what))
}

// Hold claims a VM for an operation of another service (a workspace
// prepare), so that no stop, delete or second such operation runs on it
// meanwhile.
func (m *Manager) Hold(name, what string) (release func(), err error) {
	return m.claim(name, op(what))
}

// stopping reports whether a stop or delete of the VM is in progress.
func (m *Manager) stopping(name string) bool {
	op := op(m.claims.Holder(name))
	return op == opStop || op == opDelete
}

// running is what the manager holds for a live VM besides its row.
type running struct {
	handle *vmm.Handle
	agent  *agentproto.Client
	cancel context.CancelFunc // stops the exit watcher
	paused bool               // its vCPUs are frozen: nothing answers
}

// adoptAgent installs cl as the agent connection of the VM whose VMM is
// h, unless a live one is there already, which it returns instead (and
// closes cl): two callers that connect at once end up sharing one. A VM
// that is no longer h's (stopped, deleted, restarted) gets no connection.
func (m *Manager) adoptAgent(name string, h *vmm.Handle, cl *agentproto.Client) (*agentproto.Client, error) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	r := m.live[name]
	if r == nil || r.handle == nil || r.handle.PID != h.PID || r.handle.StartTime != h.StartTime {
		cl.Close()
		return nil, errdefs.Conflict("vm %q stopped while its agent was being reached", name)
	}
	if r.agent != nil && r.agent != cl {
		select {
		case <-r.agent.Done():
			r.agent.Close()
		default:
			cl.Close()
			return r.agent, nil
		}
	}
	r.agent = cl
	return cl, nil
}

// Agent returns a connected agent client for a running VM, reconnecting
// when the cached connection has dropped. It is served from the live
// table; the database is read only to say why a VM has no agent.
func (m *Manager) Agent(ctx context.Context, name string) (*agentproto.Client, error) {
	m.liveMu.Lock()
	var h *vmm.Handle
	paused := false
	if r := m.live[name]; r != nil {
		h, paused = r.handle, r.paused
	}
	m.liveMu.Unlock()
	if paused {
		return nil, errdefs.Conflict("vm %q is paused; resume it with 'banger vm resume %s'", name, name)
	}
	if h == nil || m.stopping(name) {
		row, err := m.Row(ctx, name)
		if err != nil {
			return nil, err
		}
		state := row.State
		if state == api.VMRunning {
			state = api.VMStopping
		}
		return nil, errdefs.Conflict("vm %q is %s; start it with 'banger vm start %s'", name, state, name)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := m.agentClient(cctx, name, h)
	if err != nil {
		return nil, errdefs.Unavailable("vm %q: cannot reach the guest agent: %w", name, err)
	}
	return cl, nil
}

// agentClient returns the VM's live agent connection, connecting first
// when there is none (as after a daemon restart re-adopted the VM).
func (m *Manager) agentClient(ctx context.Context, name string, h *vmm.Handle) (*agentproto.Client, error) {
	m.liveMu.Lock()
	if r := m.live[name]; r != nil && r.agent != nil {
		select {
		case <-r.agent.Done():
		default:
			cl := r.agent
			m.liveMu.Unlock()
			return cl, nil
		}
	}
	m.liveMu.Unlock()
	cl, err := agentproto.Connect(ctx, func(ctx context.Context) (net.Conn, error) { return m.driver.DialAgent(ctx, h) })
	if err != nil {
		return nil, err
	}
	return m.adoptAgent(name, h, cl)
}

// watch marks the VM stopped when its VMM process exits, however that
// happens (guest poweroff, crash, kill -9). Close waits for the watcher.
func (m *Manager) watch(row store.VM) {
	h := row.Handle
	ctx, cancel := context.WithCancel(m.life)
	m.liveMu.Lock()
	r := m.live[row.Name]
	if r == nil {
		r = &running{}
		m.live[row.Name] = r
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.handle, r.cancel = h, cancel
	m.liveMu.Unlock()
	m.watchers.Go(func() {
		if err := vmm.WaitExit(ctx, h); err != nil {
			return // the manager is closing, or the watch was cancelled
		}
		// An exit during a stop or delete is that operation's doing: it
		// records the stop itself. Ask before marking: once the row is
		// stopped the operation may finish and release its claim.
		expected := m.stopping(row.Name)
		if m.markStopped(row.Name, h, "") && !expected {
			m.events.Event(context.Background(), "warn", "vm/"+row.Name, "vm "+row.Name+" stopped on its own (see 'banger vm logs "+row.Name+"')")
		}
	})
}

func (m *Manager) unwatch(name string) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if r := m.live[name]; r != nil {
		if r.cancel != nil {
			r.cancel()
		}
		if r.agent != nil {
			r.agent.Close()
		}
		delete(m.live, name)
	}
}

// Row returns a VM's row, or a not-found error that says what to do.
func (m *Manager) Row(ctx context.Context, name string) (store.VM, error) {
	return vmRow(ctx, &m.store.Reader, name)
}

// Rows lists every VM's row.
func (m *Manager) Rows(ctx context.Context) ([]store.VM, error) {
	return m.store.VMs(ctx)
}

func vmRow(ctx context.Context, rd *store.Reader, name string) (store.VM, error) {
	r, err := rd.VM(ctx, name)
	if errors.Is(err, store.ErrNoRow) {
		return store.VM{}, errdefs.NotFound("vm %q not found; run 'banger vm list' to see your VMs", name)
	}
	if err != nil {
		return store.VM{}, fmt.Errorf("reading vm %q: %w", name, err)
	}
	return r, nil
}

// writeSSHConfig writes the ssh_config snippet for 'ssh <name>.vm'; the
// known_hosts file rewrites it as VMs are pinned and forgotten.
func (m *Manager) writeSSHConfig() error { return m.hosts.WriteConfig() }
