package main

import (
	"banger/internal/config"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
)

// firecrackerDriver runs VMs with firecracker_bin, or "firecracker" from
// PATH; with firecracker_jailer on, under the jailer (jailer_bin, or
// "jailer" from PATH), which needs bangerd to run as root.
func firecrackerDriver(cfg config.Config) vmm.Driver {
	opts := firecracker.Options{Binary: cfg.FirecrackerBin}
	if cfg.FirecrackerJailer {
		opts.Jailer = &firecracker.Jailer{
			Binary: cfg.JailerBin, UID: cfg.JailerUID, GID: cfg.JailerGID, ChrootBase: cfg.JailerChrootBase,
		}
	}
	return firecracker.New(opts)
}
