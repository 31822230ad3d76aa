package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/vmm"
)

var _ vmm.Releaser = (*Driver)(nil)

// Release removes what an exited QEMU leaves in its runtime dir: the pid
// file, the sockets and, for a VM whose memory lived in a file, that
// file, as large as the memory the guest used.
func (d *Driver) Release(ctx context.Context, h *vmm.Handle) error {
	if vmm.Alive(h.PID, h.StartTime) {
		return fmt.Errorf("releasing qemu pid %d: it is still running", h.PID)
	}
	d.clean(h.RuntimeDir)
	// The handle names the memory file of the driver that started it,
	// whatever this one's MemoryDir; only a file named like one is removed.
	if p := h.Sockets["memory"]; p != "" && isMemoryFile(p) {
		os.Remove(p)
	}
	return nil
}

func isMemoryFile(p string) bool {
	b := filepath.Base(p)
	return filepath.IsAbs(p) && strings.HasPrefix(b, "banger-") && strings.HasSuffix(b, ".mem")
}
