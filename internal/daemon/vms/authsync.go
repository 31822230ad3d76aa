package vms

import (
	"context"
	"fmt"
	"strings"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/authsync"
	"banger/internal/store"
)

// authSyncFor decides which coding agents' host credentials a new VM
// receives at each boot: what the create asked for; else none for an
// image pulled from a registry (its content is someone else's, and a
// credential is worth more than a convenience); else the config's
// auth_sync. note, when not empty, tells the user why none and how to
// change it.
func (m *Manager) authSyncFor(req api.CreateVMRequest, im api.Image) (tools []string, note string, err error) {
	if req.AuthSync != nil {
		tools, err := authsync.Check(*req.AuthSync)
		if err != nil {
			return nil, "", errdefs.Invalid("--auth-sync: %v", err)
		}
		return tools, "", nil
	}
	if im.Source == "pull" {
		return []string{}, fmt.Sprintf("image %s was pulled from a registry, so vm %s gets no host credentials; "+
			"pass --auth-sync %s at create, or copy them later with 'banger vm auth sync %s'",
			im.Name, req.Name, joinTools(m.cfg.AuthSync), req.Name), nil
	}
	tools, err = authsync.Check(m.cfg.AuthSync)
	if err != nil {
		return nil, "", errdefs.Invalid("auth_sync in the config: %v", err)
	}
	return tools, "", nil
}

func joinTools(names []string) string {
	if len(names) == 0 {
		names = authsync.All()
	}
	return strings.Join(names, ",")
}

// SetAuthSync changes which tools' credentials a VM receives at each
// boot from now on; nothing is copied or removed in a running guest.
func (m *Manager) SetAuthSync(ctx context.Context, name string, tools []string) (api.VM, error) {
	tools, err := authsync.Check(tools)
	if err != nil {
		return api.VM{}, errdefs.Invalid("%v", err)
	}
	release, err := m.claim(name, opUpdate)
	if err != nil {
		return api.VM{}, err
	}
	defer release()
	err = m.store.Tx(ctx, func(tx *store.Tx) error {
		row, err := vmRow(ctx, &tx.Reader, name)
		if err != nil {
			return err
		}
		row.AuthSync = tools
		return tx.PutVM(ctx, row)
	})
	if err != nil {
		return api.VM{}, err
	}
	m.events.Event(ctx, "info", "vm/"+name, fmt.Sprintf("auth sync of vm %s set to %s from its next boot", name, authsync.Describe(tools)))
	return m.VM(ctx, name)
}
