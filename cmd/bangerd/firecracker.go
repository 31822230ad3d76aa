package main

import (
	"banger/internal/config"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
)

// firecrackerDriver runs VMs with firecracker_bin, or "firecracker" from
// PATH. The jailer is not configurable yet: the daemon runs as the user,
// and the jailer needs root.
func firecrackerDriver(cfg config.Config) vmm.Driver {
	return firecracker.New(firecracker.Options{Binary: cfg.FirecrackerBin})
}
