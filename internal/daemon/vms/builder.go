package vms

import (
	"context"
	"fmt"
	"path/filepath"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Builder is a VM an image build runs one step in. It is claimed for the
// build from boot to Remove, and no host credential is synced into it.
type Builder struct {
	m       *Manager
	name    string
	row     store.VM
	cl      *agentproto.Client
	release func()
}

// BootBuilder creates and boots a builder VM named name from im.
func (m *Manager) BootBuilder(ctx context.Context, name string, im api.Image, p progress.Func) (*Builder, error) {
	release, err := m.claim(name, opBuild)
	if err != nil {
		return nil, err
	}
	b := &Builder{m: m, name: name, release: release}
	if _, err := m.createVM(ctx, api.CreateVMRequest{Name: name}, im, p, true); err != nil {
		release()
		return nil, fmt.Errorf("booting the builder vm: %w", err)
	}
	if b.row, err = m.Row(ctx, name); err == nil {
		b.cl, err = m.Agent(ctx, name)
	}
	if err != nil {
		b.Remove()
		return nil, err
	}
	return b, nil
}

// Agent is the builder's guest agent.
func (b *Builder) Agent() *agentproto.Client { return b.cl }

// Shutdown stops the builder cleanly (its disks synced and unmounted) and
// returns the paths of its root and work disks, which the caller may move
// away before Remove.
func (b *Builder) Shutdown(ctx context.Context) (rootfs, work string, err error) {
	if err := b.m.shutdown(ctx, &b.row, b.row.Handle); err != nil {
		return "", "", err
	}
	b.m.unwatch(b.row.Name)
	return filepath.Join(b.row.Dir, RootfsFile), filepath.Join(b.row.Dir, WorkFile), nil
}

// Remove kills the builder if it still runs and removes every trace of
// it, then releases its claim.
func (b *Builder) Remove() {
	defer b.release()
	if b.row.Name == "" {
		// Booted, but its row could not be read: remove it by name.
		if err := b.m.Discard(context.Background(), b.name); err != nil {
			b.m.log.Warn("removing a builder vm", "vm", b.name, "err", err)
		}
		return
	}
	if h := b.row.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		b.m.driver.Kill(context.Background(), h)
		vmm.WaitExit(context.Background(), h)
	}
	b.m.unwatch(b.row.Name)
	b.m.forgetVM(b.row)
}

// Discard kills and removes a VM left behind by an interrupted image
// build (found at start, before Reconcile).
func (m *Manager) Discard(ctx context.Context, name string) error {
	row, err := m.Row(ctx, name)
	if err != nil {
		return err
	}
	if h := row.Handle; h != nil && vmm.Alive(h.PID, h.StartTime) {
		m.driver.Kill(ctx, h)
		vmm.WaitExit(ctx, h)
	}
	m.forgetVM(row)
	return nil
}
