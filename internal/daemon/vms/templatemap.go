package vms

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// Reaper is implemented by drivers whose VMM processes can outlive a
// daemon killed while it ran them without a record in the database: the
// VMM of a memory mapping (vmm.MemoryMapper), which runs in a runtime
// directory of its own (RuntimeDir/vm/.map-HEX). Reap ends the VMM
// started with runtime directory runtimeDir, if one still runs, from what
// it left there alone (a new daemon knows nothing else), guarding against
// a reused pid, and removes its files from there; a directory with no VMM
// in it is fine. It fails when such a VMM still runs after ctx ends.
//
// At start the manager reaps every mapping's runtime directory before it
// frees the TAP that mapping held (reapMappings): a TAP still open in a
// live VMM must not go to another VM. A driver that maps memory without
// implementing Reaper gets its mappings' directories removed and their
// TAPs freed unchecked.
type Reaper interface {
	Reap(ctx context.Context, runtimeDir string) error
}

// reapMappings ends the VMMs of the mappings an earlier daemon left (it
// was killed while they ran), removes their runtime directories and
// frees the TAPs they held. A mapping whose VMM cannot be ended keeps its
// directory and its TAP until a later start.
func (m *Manager) reapMappings(ctx context.Context) {
	dir := filepath.Join(m.layout.RuntimeDir, "vm")
	ents, _ := os.ReadDir(dir)
	reaper, _ := m.driver.(Reaper)
	kept := map[string]bool{} // TAP keys of mappings still running
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), mapTAPPrefix) {
			continue
		}
		rt := filepath.Join(dir, e.Name())
		if reaper != nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := reaper.Reap(rctx, rt)
			cancel()
			if err != nil {
				kept[mapTAPKey(rt)] = true
				m.log.Warn("ending the vmm of a mapping a killed daemon left", "dir", rt, "err", err)
				m.events.Event(ctx, "warn", "daemon", "a template memory mapping left running by an earlier daemon could not be ended ("+err.Error()+"); its TAP stays held until a later start")
				continue
			}
		}
		m.log.Info("removed a template memory mapping left by an earlier daemon", "dir", rt)
		if err := os.RemoveAll(rt); err != nil {
			m.log.Warn("removing a mapping's runtime directory", "dir", rt, "err", err)
		}
	}
	m.releaseMapTAPs(ctx, kept)
}

// releaseMapTAPs frees the TAPs mappings held when the daemon died, but
// those of the mappings in kept (by TAP key).
func (m *Manager) releaseMapTAPs(ctx context.Context, kept map[string]bool) {
	if m.net == nil {
		return
	}
	held, err := m.store.TapAssignments(ctx)
	if err != nil {
		m.log.Warn("reading tap assignments", "err", err)
		return
	}
	for _, a := range held {
		if strings.HasPrefix(a.VM, mapTAPPrefix) && !kept[a.VM] {
			m.net.ReleaseTAP(ctx, a.VM)
		}
	}
}

// mapTAPKey is the name under which the mapping whose runtime directory
// is rt holds its TAP.
func mapTAPKey(rt string) string { return mapTAPPrefix + filepath.Base(rt) }

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
		key := mapTAPKey(src.RuntimeDir)
		tap, err := m.net.AcquireTAP(ctx, key)
		if err != nil {
			return transientError{fmt.Errorf("lending the mapping a tap: %w", err)}
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
