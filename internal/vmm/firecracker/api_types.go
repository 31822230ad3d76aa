package firecracker

// Request and response bodies of the Firecracker API, written by hand from
// shared/spec/firecracker-api.yaml. Only what banger sends or reads is
// here; optional fields are omitted when empty, because Firecracker
// rejects unknown fields and a field it does not know yet (an older
// release) would fail the whole request.

// MachineConfig is PUT /machine-config (definition MachineConfiguration).
type MachineConfig struct {
	VcpuCount       int    `json:"vcpu_count"`
	MemSizeMib      int    `json:"mem_size_mib"`
	Smt             bool   `json:"smt,omitempty"`
	TrackDirtyPages bool   `json:"track_dirty_pages,omitempty"`
	HugePages       string `json:"huge_pages,omitempty"` // None | Transparent | 2M
}

// BootSource is PUT /boot-source.
type BootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	BootArgs        string `json:"boot_args,omitempty"`
	InitrdPath      string `json:"initrd_path,omitempty"`
}

// Drive is PUT /drives/{drive_id}, a virtio-block disk.
type Drive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
	CacheType    string `json:"cache_type,omitempty"` // Unsafe | Writeback
	IoEngine     string `json:"io_engine,omitempty"`  // Sync | Async
}

// NetworkInterface is PUT /network-interfaces/{iface_id}.
type NetworkInterface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
	GuestMac    string `json:"guest_mac,omitempty"`
	Mtu         int    `json:"mtu,omitempty"`
}

// Vsock is PUT /vsock. Firecracker binds UdsPath when it handles the call.
type Vsock struct {
	GuestCid uint32 `json:"guest_cid"`
	UdsPath  string `json:"uds_path"`
}

// Logger is PUT /logger. LogPath must exist (a file or a FIFO).
type Logger struct {
	LogPath       string `json:"log_path,omitempty"`
	Level         string `json:"level,omitempty"` // Error | Warning | Info | Debug | Trace | Off
	ShowLevel     bool   `json:"show_level,omitempty"`
	ShowLogOrigin bool   `json:"show_log_origin,omitempty"`
}

// Metrics is PUT /metrics. MetricsPath must exist (a file or a FIFO).
type Metrics struct {
	MetricsPath string `json:"metrics_path"`
}

// Action types of PUT /actions.
const (
	ActionInstanceStart  = "InstanceStart"
	ActionSendCtrlAltDel = "SendCtrlAltDel"
	ActionFlushMetrics   = "FlushMetrics"
)

// InstanceActionInfo is PUT /actions.
type InstanceActionInfo struct {
	ActionType string `json:"action_type"`
}

// Instance states of InstanceInfo.State.
const (
	StateNotStarted = "Not started"
	StateRunning    = "Running"
	StatePaused     = "Paused"
)

// InstanceInfo is GET /.
type InstanceInfo struct {
	AppName    string `json:"app_name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	VmmVersion string `json:"vmm_version"`
}

// Version is GET /version (definition FirecrackerVersion).
type Version struct {
	FirecrackerVersion string `json:"firecracker_version"`
}

// fault is the body of every error answer (definition Error).
type fault struct {
	FaultMessage string `json:"fault_message"`
}

// VM states of PATCH /vm (definition Vm).
const (
	VMPaused  = "Paused"
	VMResumed = "Resumed"
)

// VM is PATCH /vm.
type VM struct {
	State string `json:"state"`
}

// Snapshot types of SnapshotCreateParams.
const (
	SnapshotFull = "Full"
	SnapshotDiff = "Diff"
)

// SnapshotCreateParams is PUT /snapshot/create. The VM must be paused.
type SnapshotCreateParams struct {
	SnapshotPath string `json:"snapshot_path"`
	MemFilePath  string `json:"mem_file_path"`
	SnapshotType string `json:"snapshot_type,omitempty"`
}

// Memory backends of MemoryBackend.
const (
	BackendFile = "File"
	BackendUffd = "Uffd"
)

// MemoryBackend is where a snapshot load gets guest memory: a file it
// maps privately, or a userfaultfd handler listening on a unix socket.
type MemoryBackend struct {
	BackendType string `json:"backend_type"`
	BackendPath string `json:"backend_path"`
}

// NetworkOverride moves a restored network interface to another TAP.
type NetworkOverride struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// VsockOverride moves a restored vsock device to another socket.
type VsockOverride struct {
	UdsPath string `json:"uds_path"`
}

// SnapshotLoadParams is PUT /snapshot/load, accepted only by a fresh
// Firecracker with nothing but the logger and metrics configured. The
// deprecated mem_file_path is left out: MemBackend replaces it.
type SnapshotLoadParams struct {
	SnapshotPath     string            `json:"snapshot_path"`
	MemBackend       *MemoryBackend    `json:"mem_backend,omitempty"`
	ResumeVM         bool              `json:"resume_vm,omitempty"`
	NetworkOverrides []NetworkOverride `json:"network_overrides,omitempty"`
	VsockOverride    *VsockOverride    `json:"vsock_override,omitempty"`
	TrackDirtyPages  bool              `json:"track_dirty_pages,omitempty"`
}
