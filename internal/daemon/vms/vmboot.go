package vms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/ext4"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// bootTimeout bounds the wait for a booting guest's agent. Software
// emulation (TCG) boots several times slower than KVM.
func (m *Manager) bootTimeout(ctx context.Context) time.Duration {
	if m.bootWait > 0 {
		return m.bootWait
	}
	if m.driver.Capabilities(ctx).KVM {
		return 60 * time.Second
	}
	return 3 * time.Minute
}

// boot starts the VM process for row and waits for its agent; a builder
// VM (image build) skips the boot hook, so no host credential reaches it. On failure
// the process is killed and the TAP released; the row is left stopped
// with the error recorded.
func (m *Manager) boot(ctx context.Context, row *store.VM, im api.Image, p progress.Func, builder bool) (err error) {
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
			row.State, row.Handle, row.TAP, row.LastError = api.VMError, nil, "", lastError(err)
			m.saveVM(*row)
		}
	}()
	if err := os.MkdirAll(row.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("creating runtime dir: %w", err)
	}
	spec, err := m.vmSpec(ctx, row, im)
	if err != nil {
		return err
	}
	addr, err := m.attachNetwork(ctx, row, &spec, &undo)
	if err != nil {
		return err
	}
	if m.net != nil {
		spec.Cmdline += " " + strings.Join(m.net.KernelArgs(addr), " ")
	}
	how := m.driver.Name()
	if !m.driver.Capabilities(ctx).KVM {
		how += ", software emulation without KVM: slow, a first boot can take minutes"
	}
	p.Step("boot", fmt.Sprintf("booting %s (%s)", row.Name, how))
	if err := vmm.CompactLog(spec.ConsoleLog, vmm.LogKeep); err != nil {
		m.log.Warn("compacting console log", "vm", row.Name, "err", err)
	}
	h, err := m.driver.Create(ctx, spec)
	if err != nil {
		return fmt.Errorf("starting the vm process: %w", err)
	}
	undo.push(func() { m.driver.Kill(context.Background(), h) })
	// A create stays "creating" through its first boot: a daemon that dies
	// before the boot ends removes the VM at its next start, as the create
	// would have on failure. A start of an existing VM is "starting".
	if row.State != api.VMCreating {
		row.State = api.VMStarting
	}
	row.Handle, row.LastError, row.StartedAt = h, "", time.Now()
	if err := m.saveVM(*row); err != nil {
		return err
	}
	if err := m.driver.Start(ctx, h); err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	p.Step("agent", "waiting for the guest agent")
	cl, err := m.waitAgent(ctx, row, h)
	if err != nil {
		return err
	}
	undo.push(func() { cl.Close() })
	info, err := cl.Info(ctx)
	if err != nil {
		return fmt.Errorf("asking the guest agent for its info: %w", err)
	}
	if !builder && m.onBoot != nil {
		m.onBoot(ctx, row.Name, cl)
	}
	if info.SSH != "off" {
		if err := m.pinHostKey(ctx, row, cl); err != nil {
			return err
		}
		p.Step("ssh", "waiting for ssh")
		if err := m.waitSSH(ctx, row, cl); err != nil {
			return err
		}
	}
	row.State = api.VMRunning
	if err := m.saveVM(*row); err != nil {
		return err
	}
	m.watch(*row)
	if _, err := m.adoptAgent(row.Name, h, cl); err != nil {
		return err
	}
	return nil
}

// attachNetwork gives the VM a TAP (given back by undo) and puts it with
// the MAC of the VM's address into spec; it returns the address. Without
// a network it does nothing.
func (m *Manager) attachNetwork(ctx context.Context, row *store.VM, spec *vmm.Spec, undo *undoStack) (netip.Addr, error) {
	if m.net == nil {
		return netip.Addr{}, nil
	}
	// The address first: acquiring the TAP binds it to the address.
	addr, mac, err := m.net.Allocate(ctx, row.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	tap, err := m.net.AcquireTAP(ctx, row.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	undo.push(func() { m.net.ReleaseTAP(context.Background(), row.Name) })
	row.TAP = tap
	spec.Net = &vmm.Net{TAP: tap, MAC: mac}
	return addr, nil
}

// vmSpec builds the driver spec: disks, kernel, and a command line that
// makes the agent init when the image has none of its own.
func (m *Manager) vmSpec(ctx context.Context, row *store.VM, im api.Image) (vmm.Spec, error) {
	root := filepath.Join(row.Dir, RootfsFile)
	args := []string{"root=/dev/vda", "rw", "banger.hostname=" + row.Name, "banger.work=/dev/vdb"}
	target, err := ext4.Resolve(ctx, root, "/sbin/init")
	if err != nil || !strings.Contains(target, "systemd") {
		args = append(args, "init="+GuestAgentPath)
	}
	disks := []vmm.Disk{
		{ID: "rootfs", Path: root},
		{ID: "work", Path: filepath.Join(row.Dir, WorkFile)},
	}
	mods, err := m.modulesDisk(ctx, im)
	if err != nil {
		return vmm.Spec{}, err
	}
	if mods != "" {
		disks = append(disks, vmm.Disk{ID: "modules", Path: mods, ReadOnly: true})
		args = append(args, "banger.modules=/dev/vdc")
	}
	return vmm.Spec{
		Name: row.Name, RuntimeDir: row.RuntimeDir, ConsoleLog: filepath.Join(row.Dir, ConsoleLog),
		CPUs: row.CPUs, MemoryMiB: row.MemoryMiB, Kernel: im.Kernel, Initrd: im.Initrd,
		Cmdline: strings.Join(args, " "),
		Disks:   disks,
	}, nil
}

// waitAgent connects to the booting guest's agent. A VM that dies on the
// way, or stays silent past the boot timeout, fails with its console's
// last lines, which usually say why.
func (m *Manager) waitAgent(ctx context.Context, row *store.VM, h *vmm.Handle) (*agentproto.Client, error) {
	limit := m.bootTimeout(ctx)
	wctx, cancel := context.WithTimeout(ctx, limit)
	var exitWatch sync.WaitGroup
	defer exitWatch.Wait()
	defer cancel()
	died := make(chan struct{})
	exitWatch.Go(func() {
		if vmm.WaitExit(wctx, h) == nil {
			close(died)
			cancel()
		}
	})
	cl, err := agentproto.Connect(wctx, func(ctx context.Context) (conn net.Conn, err error) { return m.driver.DialAgent(ctx, h) })
	if err == nil {
		return cl, nil
	}
	console := vmm.TailLines(filepath.Join(row.Dir, ConsoleLog), 15)
	select {
	case <-died:
		return nil, fmt.Errorf("vm %s stopped while booting; console:\n%s", row.Name, console)
	default:
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errdefs.Unavailable("vm %s: the guest agent did not answer within %s; console:\n%s", row.Name, limit, console)
}

// pinHostKey records the guest's SSH host key for strict checking.
func (m *Manager) pinHostKey(ctx context.Context, row *store.VM, cl *agentproto.Client) error {
	keys, err := cl.HostKeys(ctx)
	if err != nil {
		return fmt.Errorf("reading the guest's ssh host key: %w", err)
	}
	return m.pinKeys(ctx, row, keys.Keys)
}

// pinKeys pins keys, the guest's SSH host keys, as row's.
func (m *Manager) pinKeys(ctx context.Context, row *store.VM, keys []string) error {
	if len(keys) == 0 {
		return errors.New("the guest reported no ssh host key")
	}
	row.HostKey = keys[0]
	ip := ""
	if m.net != nil {
		if a, ok := m.net.Addr(ctx, row.Name); ok {
			ip = a.String()
		}
	}
	return m.hosts.Pin(row.Name, ip, keys)
}

func (m *Manager) saveVM(r store.VM) error {
	return m.store.Tx(context.Background(), func(tx *store.Tx) error { return tx.PutVM(context.Background(), r) })
}

// waitSSH returns once the guest's SSH port accepts connections from the
// host (or, without a network, once the guest reports a listener on 22),
// so that 'vm ssh' right after create works.
func (m *Manager) waitSSH(ctx context.Context, row *store.VM, cl *agentproto.Client) error {
	limit := m.bootTimeout(ctx)
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var addr string
	if m.net != nil {
		if a, ok := m.net.Addr(ctx, row.Name); ok {
			addr = net.JoinHostPort(a.String(), "22")
		}
	}
	for {
		if addr != "" {
			var nd net.Dialer
			dctx, dcancel := context.WithTimeout(wctx, 2*time.Second)
			c, err := nd.DialContext(dctx, "tcp", addr)
			dcancel()
			if err == nil {
				c.Close()
				return nil
			}
		} else if ports, err := cl.Ports(wctx); err == nil && listens(ports, 22) {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errdefs.Unavailable("vm %s: ssh did not answer within %s; console:\n%s", row.Name, limit, vmm.TailLines(filepath.Join(row.Dir, ConsoleLog), 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func listens(ports []agentproto.Port, port int) bool {
	for _, p := range ports {
		if p.Port == port && strings.HasPrefix(p.Proto, "tcp") {
			return true
		}
	}
	return false
}

// LastErrorMax bounds the error text kept in a VM's row.
const LastErrorMax = 8 << 10

// lastError is err's text cut to LastErrorMax bytes for a VM's row; the
// console tail it may carry is bounded already, this bounds the rest.
func lastError(err error) string {
	s := err.Error()
	if len(s) <= LastErrorMax {
		return s
	}
	return s[:LastErrorMax] + "…"
}
