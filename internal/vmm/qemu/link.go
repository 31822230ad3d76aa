package qemu

import (
	"context"
	"fmt"

	"banger/internal/vmm"
)

var _ vmm.LinkSetter = (*Driver)(nil)

// netdevID is the id of the VM's tap backend on QEMU's command line
// (args.go). set_link on it also sets the link of the virtio-net device
// facing the guest: QEMU drops what the guest sends and the guest sees
// its carrier go.
const netdevID = "net0"

// SetLink implements vmm.LinkSetter with QMP set_link.
func (d *Driver) SetLink(ctx context.Context, h *vmm.Handle, up bool) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	q, err := dialQMP(ctx, h.Sockets["qmp"])
	if err != nil {
		return err
	}
	defer q.close()
	if _, err := q.call(ctx, "set_link", map[string]any{"name": netdevID, "up": up}); err != nil {
		return fmt.Errorf("setting the vm's network link %s: %w", map[bool]string{true: "up", false: "down"}[up], err)
	}
	return nil
}
