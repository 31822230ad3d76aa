package vms

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/fsutil"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// offlineMAC is the MAC of the network device of the VMM that maps a
// template's memory: that VMM never runs its guest, and the MAC is not
// part of the saved device model.
const offlineMAC = "02:00:00:00:00:01"

// mapTAPPrefix marks the TAP a mapping holds (by the name it holds it
// under); what a crash left is freed at start.
const mapTAPPrefix = ".map-"

// releaseMapTAPs frees the TAPs mappings held when the daemon died.
func (m *Manager) releaseMapTAPs(ctx context.Context) {
	if m.net == nil {
		return
	}
	held, err := m.store.TapAssignments(ctx)
	if err != nil {
		m.log.Warn("reading tap assignments", "err", err)
		return
	}
	for _, a := range held {
		if strings.HasPrefix(a.VM, mapTAPPrefix) {
			m.net.ReleaseTAP(ctx, a.VM)
		}
	}
}

// mapTemplateMemory rewrites the saved state of the template being made
// in dir (whose disks are copied there already) so that its memory is a
// file every restore maps privately, where the driver can
// (vmm.MemoryMapper): a warm create then maps the memory instead of
// reading all of it, and the VMs of one template share the pages none of
// them changed (docs/snapshots.md). It is best effort: a template left
// with its memory in the stream restores too, only slower.
func (m *Manager) mapTemplateMemory(ctx context.Context, row store.VM, dir, final string, p progress.Func) {
	mm, ok := m.driver.(vmm.MemoryMapper)
	if !ok {
		return
	}
	if err := m.mapState(ctx, mm, row, dir, final, row.TAP != "", p); err != nil {
		m.log.Warn("mapping a template's memory; its restores read the whole stream", "vm", row.Name, "err", err)
		m.events.Event(ctx, "warn", "vm/"+row.Name, "the template's memory could not be mapped into a file (its warm creates will be slower): "+err.Error())
	}
}

// mapState maps the memory of the state in dir/state, saved from row (a
// VM with a network device when withNet), using the disks in dir; final
// is where dir is or will be renamed.
func (m *Manager) mapState(ctx context.Context, mm vmm.MemoryMapper, row store.VM, dir, final string, withNet bool, p progress.Func) error {
	stateDir := filepath.Join(dir, StateDir)
	st, ok, err := readStateDir(stateDir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the template has no saved state in %s", stateDir)
	}
	im, err := m.images.Bootable(ctx, row.Image)
	if err != nil {
		return err
	}
	// The spec is the saved VM's, on the template's copies of its disks
	// and a runtime directory of its own.
	src := row
	src.Dir = dir
	src.RuntimeDir = filepath.Join(filepath.Dir(row.RuntimeDir), mapTAPPrefix+fsutil.RandomHex())
	if err := os.MkdirAll(src.RuntimeDir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(src.RuntimeDir)
	spec, err := m.vmSpec(ctx, &src, im)
	if err != nil {
		return err
	}
	spec.ConsoleLog = filepath.Join(src.RuntimeDir, "console.log")
	if withNet && m.net != nil {
		// The network device's features depend on its backend (a TAP
		// offers offloads a hub port does not), and a stream loads only
		// where they match: the mapping's QEMU holds a TAP of the pool
		// for the time it runs, with no lease, so nothing it might send
		// goes anywhere (egress drops what no lease owns).
		key := mapTAPPrefix + filepath.Base(src.RuntimeDir)
		tap, err := m.net.AcquireTAP(ctx, key)
		if err != nil {
			return err
		}
		defer m.net.ReleaseTAP(context.Background(), key)
		spec.Net = &vmm.Net{TAP: tap, MAC: offlineMAC}
	}
	p.Step("map", fmt.Sprintf("mapping the template's memory (%d MiB) into a file its warm creates share", row.MemoryMiB))
	mapped, err := mm.MapMemory(ctx, spec, st)
	if err != nil {
		return err
	}
	if err := confineState(&mapped, stateDir); err != nil {
		return err
	}
	mapped.Dir = filepath.Join(final, StateDir)
	b, err := json.Marshal(mapped)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(stateDir, stateMeta), b, 0o600); err != nil {
		return fmt.Errorf("writing the state description: %w", err)
	}
	return syncTree(stateDir)
}
