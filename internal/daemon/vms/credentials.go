package vms

import (
	"context"
	"fmt"

	"banger/api"
	"banger/internal/authsync"
	"banger/internal/progress"
	"banger/internal/store"
)

// Credentials a VM has received (store migration 0007). A VM's guest may
// hold more of the host's credentials than its auth_sync list says: a
// 'vm auth sync' on request copies tools outside it, and a list shrunk
// after a boot leaves what that boot copied. So every copy is recorded,
// before its files are put into the guest, and a VM restored from a saved
// state (a fork, a warm create) starts with what that state's VM had
// received. A template records its VM's list (template.go), and a create
// whose VM is not to receive one of them does not start from it
// (warmcreate.go).

// RecordCredentials records that vm is about to receive the credentials
// of tools; an error means it must not.
func (m *Manager) RecordCredentials(ctx context.Context, vm string, tools []string) error {
	return m.store.Tx(ctx, func(tx *store.Tx) error {
		if _, err := vmRow(ctx, &tx.Reader, vm); err != nil {
			return err
		}
		return tx.AddVMCredentials(ctx, vm, tools)
	})
}

// Credentials lists the tools whose credentials vm has ever received.
func (m *Manager) Credentials(ctx context.Context, vm string) ([]string, error) {
	return m.store.VMCredentials(ctx, vm)
}

// inheritCredentials records that vm holds whatever from received: a VM
// restored from another's saved state holds what that one had received.
func (m *Manager) inheritCredentials(ctx context.Context, vm string, received []string) error {
	if len(received) == 0 {
		return nil
	}
	return m.store.Tx(ctx, func(tx *store.Tx) error { return tx.AddVMCredentials(ctx, vm, received) })
}

// olderTemplateCredentials is what a template saved before the record
// existed counts as holding: it recorded its VM's auth sync list, which a
// 'vm auth sync' on request could exceed, so every tool's credentials.
func olderTemplateCredentials() []string { return authsync.All() }

// replaceOlderAuto removes t, an image's automatic template, if it was
// saved before the record: it counts as holding every credential, so the
// VMs of its image that are not to receive them all (those of a pulled
// image, by default) would never start from it again. It reports whether
// t is gone, so that the VM just booted is kept in its place.
func (m *Manager) replaceOlderAuto(ctx context.Context, t api.Template, p progress.Func) bool {
	if !t.Auto || t.Received {
		return false
	}
	p.Step("template", fmt.Sprintf("replacing template %s, saved before banger recorded the credentials a template's vm received", t.Name))
	if err := m.DeleteTemplate(ctx, t.Name); err != nil {
		m.log.Warn("replacing an older automatic template", "template", t.Name, "err", err)
		return false
	}
	return true
}
