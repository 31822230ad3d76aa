package vmmfake

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"banger/internal/vmm"
)

// mappedFile is what the fake's MapMemory adds to a state, by role
// "mapped": it stands for a real driver's memory file.
const mappedFile = "mapped"

var _ vmm.MemoryMapper = (*Driver)(nil)

// MapMemory implements vmm.MemoryMapper as its contract says, as far as
// a caller can see: spec must describe the saved VM (its sizes) on disks
// that exist, with a runtime directory; the state
// gains a file, and a mapped state is returned as it is. The specs it was
// given are kept for tests (MapCalls). Meanwhile a stand-in VMM process
// runs, recorded in the runtime directory (Reap, Mappings).
func (d *Driver) MapMemory(ctx context.Context, spec vmm.Spec, st vmm.State) (vmm.State, error) {
	if d.Mapped(st) {
		return st, nil
	}
	if fi, err := os.Stat(spec.RuntimeDir); err != nil || !fi.IsDir() {
		return st, fmt.Errorf("runtime dir %s: %v", spec.RuntimeDir, err)
	}
	// A real mapping runs a VMM for a while, recorded in the runtime
	// directory, and ends it when it returns or ctx ends.
	h, err := d.startMapping(spec.RuntimeDir)
	if err != nil {
		return st, fmt.Errorf("starting the mapping's vmm: %w", err)
	}
	defer d.endMapping(h)
	d.mu.Lock()
	hold := d.onMap
	d.mu.Unlock()
	if hold != nil {
		hold(ctx)
		if err := ctx.Err(); err != nil {
			return st, err
		}
	}
	if err := vmm.CheckAlive(h); err != nil {
		return st, fmt.Errorf("the mapping's vmm exited while loading the state: %w", err)
	}
	if err := d.failing(StepMap); err != nil {
		return st, err
	}
	if st.CPUs != spec.CPUs || st.MemoryMiB != spec.MemoryMiB {
		return st, fmt.Errorf("the state is of a vm with %d cpus and %d MiB, not %d and %d", st.CPUs, st.MemoryMiB, spec.CPUs, spec.MemoryMiB)
	}
	for _, disk := range spec.Disks {
		if _, err := os.Stat(disk.Path); err != nil {
			return st, fmt.Errorf("checking disk %s: %w", disk.ID, err)
		}
	}
	if err := os.WriteFile(filepath.Join(st.Dir, mappedFile), []byte(Version+"\n"), 0o600); err != nil {
		return st, err
	}
	d.mu.Lock()
	d.mapCalls = append(d.mapCalls, spec)
	d.mu.Unlock()
	out := st
	out.Files = maps.Clone(st.Files)
	out.Files[mappedFile] = mappedFile
	return out, nil
}

// Mapped implements vmm.MemoryMapper.
func (d *Driver) Mapped(st vmm.State) bool { return st.Files[mappedFile] != "" }

// OnMap makes every MapMemory of a state not yet mapped call hold with
// its context first, before it fails (Fail(StepMap)) or maps, as long as
// a mapping by a real VMM would run; MapMemory returns the context's
// error once hold returns if it ended meanwhile. nil clears it.
func (d *Driver) OnMap(hold func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onMap = hold
}

// MapCalls returns the specs MapMemory mapped states with.
func (d *Driver) MapCalls() []vmm.Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]vmm.Spec(nil), d.mapCalls...)
}
