package vms

import (
	"context"
	"sync"

	"banger/internal/vmm"
)

// How long a warm create holds a template. A template delete renames its
// directory away under the templates' write lock, so it waits for every
// create holding the read lock. A create needs the template's files only
// until its restore has them: the disks are copied into the new VM's
// directory before the restore, and the VMM has read the saved stream and
// opened (mapped) the memory file by the time Restore returns. A file
// that is open or mapped outlives its name on Linux: the VM keeps running
// on it after the delete (its space is freed when the last such VMM ends),
// and nothing after Restore opens the template's files by name. So the
// read lock goes as soon as Restore returns, not when the create ends:
// the resume, the wait for the agent, the identity, SSH and the auth sync
// no longer hold up a delete or a save of another template.

// readLockTemplates takes the templates' read lock and returns its
// release, which may be called any number of times.
func (m *Manager) readLockTemplates() func() {
	m.templates.RLock()
	var once sync.Once
	return func() { once.Do(m.templates.RUnlock) }
}

// doneAfterRestore returns snap, whose Restore calls done when it returns,
// whether it succeeded or not; snap itself when done is nil.
func doneAfterRestore(snap vmm.Snapshotter, done func()) vmm.Snapshotter {
	if done == nil {
		return snap
	}
	return restoreDone{Snapshotter: snap, done: done}
}

type restoreDone struct {
	vmm.Snapshotter
	done func()
}

func (r restoreDone) Restore(ctx context.Context, spec vmm.Spec, st vmm.State) (*vmm.Handle, error) {
	defer r.done()
	return r.Snapshotter.Restore(ctx, spec, st)
}
