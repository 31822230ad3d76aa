package api

// ForkVMRequest makes a running, paused or suspended VM's twin (docs/vms.md,
// "Fork"): POST /v1/vms/{name}/fork streams progress events and ends with
// the new VM.
type ForkVMRequest struct {
	// Name is the new VM's name.
	Name string `json:"name"`
}
