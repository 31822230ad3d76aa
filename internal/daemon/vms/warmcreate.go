package vms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
	"banger/internal/vmm"
)

// Warm creates: 'vm create --image T' of a template T, and creates of an
// image that has an automatic template (IMAGE-warm) unless --cold.

// warmTemplate picks the template a create starts from, if any. A
// template named by --image is used or refused (it fixes the VM's size);
// an image's automatic template only when the request's size is its
// size. With --cold a template's image boots instead, and req.Image is
// set to it.
func (m *Manager) warmTemplate(ctx context.Context, req *api.CreateVMRequest) (api.Template, bool, error) {
	t, err := m.Template(ctx, req.Image)
	switch {
	case err == nil && req.Cold:
		req.Image = t.Image
		return api.Template{}, false, nil
	case err == nil:
		if !fits(*req, t, false) {
			return api.Template{}, false, errdefs.Invalid("template %q is of a vm with %d cpus, %d MiB of memory and a %d MiB disk; drop --cpus, --memory and --disk-size, or boot its image with 'banger vm create --image %s --cold'",
				t.Name, t.CPUs, t.MemoryMiB, t.DiskBytes>>20, t.Image)
		}
		if extra, err := m.credentialsBeyond(ctx, *req, t); err != nil {
			return api.Template{}, false, err
		} else if len(extra) > 0 {
			return api.Template{}, false, errdefs.Conflict("template %q was saved from vm %s, which received the host's %s credentials, and so may hold them; vm %q is not to receive them: pass --auth-sync %s, or boot its image with 'banger vm create --image %s --cold'",
				t.Name, t.From, strings.Join(extra, ", "), req.Name, strings.Join(t.AuthSync, ","), t.Image)
		}
		return t, true, nil
	case !errors.Is(err, errdefs.ErrNotFound):
		return api.Template{}, false, err
	}
	if req.Cold || !m.cfg.WarmTemplates || m.net == nil {
		return api.Template{}, false, nil
	}
	t, err = m.Template(ctx, req.Image+autoSuffix)
	if err != nil || !t.Auto || t.Image != req.Image || !fits(*req, t, true) {
		return api.Template{}, false, nil
	}
	// A VM that is not to receive every credential the template's VM
	// received boots instead.
	if extra, err := m.credentialsBeyond(ctx, *req, t); err != nil || len(extra) > 0 {
		return api.Template{}, false, err
	}
	return t, true, nil
}

// credentialsBeyond lists the tools whose credentials t's VM received
// but a VM made by req would not: a VM restored from t would hold them.
func (m *Manager) credentialsBeyond(ctx context.Context, req api.CreateVMRequest, t api.Template) ([]string, error) {
	if len(t.AuthSync) == 0 {
		return nil, nil
	}
	im, err := m.images.Image(ctx, t.Image)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", t.Name, err)
	}
	tools, _, err := m.authSyncFor(req, im)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, tool := range t.AuthSync {
		if !slices.Contains(tools, tool) {
			extra = append(extra, tool)
		}
	}
	return extra, nil
}

// fits reports whether a create's sizes are t's: a size left out is
// t's, or with defaults, the default size.
func fits(req api.CreateVMRequest, t api.Template, defaults bool) bool {
	if defaults {
		req.CPUs = cmp.Or(req.CPUs, defaultCPUs)
		req.MemoryMiB = cmp.Or(req.MemoryMiB, defaultMemoryMiB)
		req.DiskBytes = cmp.Or(req.DiskBytes, int64(defaultDiskBytes))
	}
	return (req.CPUs == 0 || req.CPUs == t.CPUs) &&
		(req.MemoryMiB == 0 || req.MemoryMiB == t.MemoryMiB) &&
		(req.DiskBytes == 0 || req.DiskBytes == t.DiskBytes)
}

// createWarm makes a VM from template t; the caller holds its claim. On
// failure nothing is left: no disk, lease, TAP, process or row.
func (m *Manager) createWarm(ctx context.Context, req api.CreateVMRequest, t api.Template, p progress.Func) (api.VM, error) {
	// A delete waits for the creates reading the template, until their
	// restore has what it needs of its files (restoredone.go).
	unlock := m.readLockTemplates()
	defer unlock()
	t, err := m.Template(ctx, t.Name)
	if err != nil {
		return api.VM{}, err
	}
	src, err := m.templateState(t)
	if err != nil {
		return api.VM{}, err
	}
	src.Done = unlock
	im, err := m.images.Bootable(ctx, t.Image)
	if err != nil {
		return api.VM{}, fmt.Errorf("template %q: %w", t.Name, err)
	}
	req.Image, req.CPUs, req.MemoryMiB, req.DiskBytes = t.Image, t.CPUs, t.MemoryMiB, t.DiskBytes
	var undo undoStack
	defer undo.run()
	row, authNote, err := m.insertVM(ctx, req, im, false, &undo)
	if err != nil {
		return api.VM{}, err
	}
	if err := m.inheritCredentials(ctx, row.Name, t.AuthSync); err != nil {
		return api.VM{}, err
	}
	p.Step("create", fmt.Sprintf("creating vm %s from template %s of image %s", row.Name, t.Name, t.Image))
	if authNote != "" {
		p.Step("auth", authNote)
	}
	if err := m.restoreAs(ctx, src, &row, im, p); err != nil {
		var re *restoreError
		if errors.As(err, &re) {
			return api.VM{}, errdefs.Conflict("template %q (saved by %s %s) cannot be restored: %v; 'banger vm create --cold --image %s' boots its image instead, 'banger image delete %s' removes the template",
				t.Name, t.VMM, t.VMMVersion, re.err, t.Image, t.Name)
		}
		return api.VM{}, fmt.Errorf("starting vm %q from template %q: %w", req.Name, t.Name, err)
	}
	undo.clear()
	m.events.Event(ctx, "info", "vm/"+row.Name, "vm "+row.Name+" created from template "+t.Name+" and running")
	return m.VM(ctx, row.Name)
}

// restoreError is a saved state the driver would not load.
type restoreError struct{ err error }

func (e *restoreError) Error() string { return "restoring the saved state: " + e.err.Error() }
func (e *restoreError) Unwrap() error { return e.err }

// autoTemplate keeps vm, just booted from the default image, as that
// image's automatic template when it has none, so that the next create
// from it is warm. It is best effort: the VM is made either way.
func (m *Manager) autoTemplate(ctx context.Context, vm api.VM, p progress.Func) {
	name := vm.Image + autoSuffix
	if !m.cfg.WarmTemplates || m.net == nil || len(name) > 63 {
		return // without a network, no vm can be restored from it
	}
	if _, ok := m.driver.(vmm.Snapshotter); !ok {
		return
	}
	if t, err := m.Template(ctx, name); err == nil {
		if !m.replaceOlderAuto(ctx, t, p) {
			return
		}
	}
	p.Step("template", fmt.Sprintf("keeping %s as template %s, so that the next vm of image %s starts warm (warm_templates = false turns this off)", vm.Name, name, vm.Image))
	if _, err := m.snapshot(ctx, vm.Name, name, true, p); err != nil {
		m.log.Warn("making the image's template", "image", vm.Image, "err", err)
		m.events.Event(ctx, "warn", "image/"+vm.Image, "no template of image "+vm.Image+" was made: "+err.Error())
	}
}
