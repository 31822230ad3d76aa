package api

import "time"

// Template is a booted VM's saved memory and device state plus copies of
// its disks, kept so that new VMs of its image start from it (a restore
// and a new identity) instead of booting (docs/snapshots.md, "Templates").
type Template struct {
	Name  string `json:"name"`
	Image string `json:"image"` // the image its VM was created from
	// Auto marks the template banger made of its image after a first
	// boot; creates from the image use it unless asked for a cold boot.
	Auto bool   `json:"auto,omitempty"`
	From string `json:"from,omitempty"` // the VM it was saved from
	// The device model a VM restored from it has.
	CPUs      int   `json:"cpus"`
	MemoryMiB int   `json:"memory_mib"`
	DiskBytes int64 `json:"disk_bytes"`
	// AuthSync names the tools whose credentials the VM it was saved
	// from had ever received (at a boot, on request, or from the state it
	// was restored from): the credentials its disks and memory may hold.
	// A create whose VM is not to receive all of them does not start
	// from it.
	AuthSync []string `json:"auth_sync,omitempty"`
	// Received marks a template whose AuthSync is what its VM received.
	// Templates saved before banger kept that record have only their VM's
	// auth sync list, which can be narrower; they count as holding every
	// tool's credentials (AuthSync says so when they are read).
	Received bool `json:"auth_sync_received,omitempty"`
	// VMM and VMMVersion wrote the state; another version may refuse it.
	VMM        string `json:"vmm"`
	VMMVersion string `json:"vmm_version"`
	// Bytes is what the template takes on disk (allocated blocks):
	// StateBytes for the saved state, the rest for its disks.
	Bytes      int64 `json:"bytes"`
	StateBytes int64 `json:"state_bytes"`
	// SpareBytes is what its spare copy of its disks takes on disk, made
	// ahead for the next warm create (not part of Bytes); 0 while none.
	SpareBytes int64     `json:"spare_bytes,omitempty"`
	Dir        string    `json:"dir"`
	CreatedAt  time.Time `json:"created_at"`
	// MapFailure is set while mapping the template's memory into a file
	// failed (templatemap.go).
	MapFailure *TemplateMapFailure `json:"map_failure,omitempty"`
}

// SnapshotImageRequest is the body of POST /v1/vms/{name}/template: keep
// the VM's state as a template named Name.
type SnapshotImageRequest struct {
	Name string `json:"name"`
}
