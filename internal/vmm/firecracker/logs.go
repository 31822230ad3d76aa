package firecracker

import (
	"context"

	"banger/internal/vmm"
)

var _ vmm.LogTrimmer = (*Driver)(nil)

// TrimLogs implements vmm.LogTrimmer: Firecracker's log file, which a
// guest can make it write to (warnings about what the guest does), is cut
// to its tail like the console log. Firecracker writes it at its own
// offset, so the cut punches a hole rather than truncating.
func (d *Driver) TrimLogs(ctx context.Context, h *vmm.Handle) error {
	return vmm.TrimLog(layoutOf(h).log, vmm.LogLimit, vmm.LogKeep)
}
