package api

// The states of pause and suspend (docs/vms.md, "Pause, suspend and
// resume").
const (
	// VMPaused is a VM whose vCPUs are frozen: its VMM process, memory,
	// TAP and agent connection stay; 'vm resume' thaws it.
	VMPaused VMState = "paused"
	// VMSuspending is a VM whose memory is being saved to disk.
	VMSuspending VMState = "suspending"
	// VMSuspended is a VM whose memory and device state are saved next to
	// its disks: it holds no VMM process, memory or TAP; 'vm start'
	// resumes it where it was.
	VMSuspended VMState = "suspended"
	// VMRestoring is a suspended VM being started from its saved state.
	VMRestoring VMState = "restoring"
)
