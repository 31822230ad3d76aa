package firecracker

import (
	"context"
	"errors"
	"os"

	"banger/internal/vmm"
)

var _ vmm.LogTrimmer = (*Driver)(nil)

// TrimLogs implements vmm.LogTrimmer: Firecracker's log file, which a
// guest can make it write to (warnings about what the guest does), is cut
// to its tail like the console log. Firecracker writes it at its own
// offset, so the cut punches a hole rather than truncating.
//
// Under the jailer the log is in the jail's chroot, so it is opened as
// any file there (see openInJail): a link in its place must not make
// bangerd cut another file.
func (d *Driver) TrimLogs(ctx context.Context, h *vmm.Handle) error {
	path := layoutOf(h).log
	f, err := openInJail(path, os.O_RDWR, fileCheck{what: "the firecracker log", single: true, fromVMM: true})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return vmm.TrimOpenLog(f, path, vmm.LogLimit, vmm.LogKeep)
}
