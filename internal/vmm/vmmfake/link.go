package vmmfake

import (
	"context"

	"banger/internal/vmm"
)

// StepLink makes SetLink fail.
const StepLink = "link"

var _ vmm.LinkSetter = (*Driver)(nil)

// SetLink implements vmm.LinkSetter: it records the link's state, which
// LinkUp reports.
func (d *Driver) SetLink(ctx context.Context, h *vmm.Handle, up bool) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if err := d.failing(StepLink); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.linkDown == nil {
		d.linkDown = map[int]bool{}
	}
	d.linkDown[h.PID] = !up
	return nil
}

// LinkUp reports whether the network link of the VMM with pid is up:
// it is unless SetLink took it down.
func (d *Driver) LinkUp(pid int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.linkDown[pid]
}
