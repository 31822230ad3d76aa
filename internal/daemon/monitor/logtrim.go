package monitor

import (
	"context"
	"path/filepath"
	"time"

	"banger/api"
	"banger/internal/vmm"
)

// A guest writes its serial console without limit and the VMM appends it
// to the VM's console log (and Firecracker may log what the guest makes
// it do), across daemon restarts. The daemon bounds those files: each
// start compacts the console log before the VMM opens it, and while VMs
// run, trimLogs cuts every log to its tail once it holds vmm.LogLimit
// bytes (vmm.TrimLog: hole punching, so the running VMM's writes are
// neither lost nor misplaced). While the daemon is down a log can grow by
// what the guest writes meanwhile; the next start trims it.

// logTrimInterval is how often running VMs' logs are checked; a check is
// an fstat per file.
const logTrimInterval = 2 * time.Second

func (m *Monitor) trimLogs(ctx context.Context) {
	rows, err := m.vms.Rows(ctx)
	if err != nil {
		return
	}
	trimmer, _ := m.driver.(vmm.LogTrimmer)
	for _, r := range rows {
		h := r.Handle
		if r.State != api.VMRunning && r.State != api.VMStarting && r.State != api.VMCreating || h == nil {
			continue
		}
		if err := vmm.TrimLog(filepath.Join(r.Dir, vmm.ConsoleLogFile), vmm.LogLimit, vmm.LogKeep); err != nil {
			m.log.Warn("trimming console log", "vm", r.Name, "err", err)
		}
		if trimmer != nil {
			if err := trimmer.TrimLogs(ctx, h); err != nil {
				m.log.Warn("trimming vmm logs", "vm", r.Name, "err", err)
			}
		}
	}
}
