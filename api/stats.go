package api

import "time"

// VMStats answers GET /v1/vms/{name}/stats[?history=N]: the newest sample,
// up to N earlier ones, the VMM's own metrics and where the VM stands with
// auto-stop. Samples are kept in memory by the daemon (a bounded ring per
// VM), so history starts again when the daemon restarts.
type VMStats struct {
	Name  string  `json:"name"`
	State VMState `json:"state"`
	// IntervalSeconds is stats_poll_interval: how often samples are taken.
	IntervalSeconds float64       `json:"interval_seconds"`
	Current         *StatsSample  `json:"current,omitempty"`
	History         []StatsSample `json:"history,omitempty"` // oldest first, ending with Current
	Metrics         *VMMMetrics   `json:"metrics,omitempty"`
	KeepAlive       bool          `json:"keep_alive,omitempty"`
	// Busy says why the VM counts as in use ("1 ssh connection",
	// "session \"agent\" attached", "cpu 12.0%"); empty while it is idle.
	Busy string `json:"busy,omitempty"`
	// IdleSince is when the VM was last seen in use; set while it is idle.
	IdleSince *time.Time `json:"idle_since,omitempty"`
	// AutoStopAt is when the VM will be stopped if it stays idle; unset
	// when auto_stop_stale_after is 0 or the VM is kept alive.
	AutoStopAt *time.Time `json:"auto_stop_at,omitempty"`
}

// StatsSample is one reading of a running VM: the guest's view through its
// agent and the host's view of the VMM process. Rates and percentages
// cover the time since the previous sample and are zero on the first
// sample after a start.
type StatsSample struct {
	Time time.Time `json:"time"`

	// GuestError says why the guest part is missing (agent not answering).
	GuestError string      `json:"guest_error,omitempty"`
	CPUs       int         `json:"cpus,omitempty"`
	CPUPercent float64     `json:"cpu_percent"` // busy share of all vCPUs, 0 to 100
	Load       [3]float64  `json:"load"`
	Procs      int         `json:"procs,omitempty"`
	MemTotal   uint64      `json:"mem_total"`
	MemUsed    uint64      `json:"mem_used"` // total minus available
	Disks      []DiskUsage `json:"disks,omitempty"`
	// Byte rates per second, summed over disks and non-loopback interfaces.
	DiskReadRate  float64 `json:"disk_read_rate"`
	DiskWriteRate float64 `json:"disk_write_rate"`
	NetRxRate     float64 `json:"net_rx_rate"`
	NetTxRate     float64 `json:"net_tx_rate"`
	// SSHConnections counts established TCP connections to the guest's port 22.
	SSHConnections   int `json:"ssh_connections"`
	Sessions         int `json:"sessions"`          // running sessions
	AttachedSessions int `json:"attached_sessions"` // sessions a host is attached to

	// Host side: the VMM process.
	VMMError      string  `json:"vmm_error,omitempty"`
	VMMCPUPercent float64 `json:"vmm_cpu_percent"` // of one host core
	VMMCPUSeconds float64 `json:"vmm_cpu_seconds"` // user+system since the VMM started
	VMMRSS        uint64  `json:"vmm_rss"`         // resident bytes
}

// DiskUsage is one mounted filesystem in the guest.
type DiskUsage struct {
	Device string `json:"device"`
	Mount  string `json:"mount"`
	Total  uint64 `json:"total"`
	Used   uint64 `json:"used"`
}

// VMMMetrics are the VMM's own counters about a VM (Firecracker's metrics,
// QEMU's QMP statistics), read every metrics_poll_interval. Counters are
// cumulative since the VMM started.
type VMMMetrics struct {
	Time  time.Time      `json:"time"`
	Error string         `json:"error,omitempty"` // the last read failed
	Block []BlockMetrics `json:"block,omitempty"`
	Net   []NetMetrics   `json:"net,omitempty"`
	// Extra holds driver-specific values (QEMU's run state and KVM
	// counters, Firecracker's other metric groups).
	Extra map[string]any `json:"extra,omitempty"`
}

// BlockMetrics are one disk's counters as the VMM sees them.
type BlockMetrics struct {
	Device     string `json:"device"` // the disk ID: rootfs, work
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
	ReadOps    uint64 `json:"read_ops"`
	WriteOps   uint64 `json:"write_ops"`
	FlushOps   uint64 `json:"flush_ops"`
}

// NetMetrics are one network interface's counters as the VMM sees them.
type NetMetrics struct {
	Device    string `json:"device"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

// UpdateVMRequest is the body of PATCH /v1/vms/{name}; fields left out
// are not changed.
type UpdateVMRequest struct {
	// KeepAlive exempts the VM from auto_stop_stale_after.
	KeepAlive *bool `json:"keep_alive,omitempty"`
	// Network replaces the egress policy, applied at once to a running VM.
	Network *NetworkPolicy `json:"network,omitempty"`
}
