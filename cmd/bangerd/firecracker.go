package main

import (
	"context"
	"net"

	"banger/internal/errdefs"
	"banger/internal/vmm"
)

// unsupportedFirecracker stands where the Firecracker driver goes until
// it lands: every VM operation says plainly what to do instead.
type unsupportedFirecracker struct{}

func errNoFirecracker() error {
	return errdefs.Unsupported(`the firecracker driver is not available in this build; set vmm = "qemu" in ~/.config/banger/config.toml`)
}

func (unsupportedFirecracker) Name() string { return "firecracker" }
func (unsupportedFirecracker) Capabilities(context.Context) vmm.Capabilities {
	return vmm.Capabilities{}
}
func (unsupportedFirecracker) Create(context.Context, vmm.Spec) (*vmm.Handle, error) {
	return nil, errNoFirecracker()
}
func (unsupportedFirecracker) Start(context.Context, *vmm.Handle) error { return errNoFirecracker() }
func (unsupportedFirecracker) Stop(context.Context, *vmm.Handle) error  { return errNoFirecracker() }
func (unsupportedFirecracker) Kill(context.Context, *vmm.Handle) error  { return errNoFirecracker() }
func (unsupportedFirecracker) Wait(context.Context, *vmm.Handle) error  { return errNoFirecracker() }
func (unsupportedFirecracker) Adopt(context.Context, *vmm.Handle) error { return errNoFirecracker() }
func (unsupportedFirecracker) DialAgent(context.Context, *vmm.Handle) (net.Conn, error) {
	return nil, errNoFirecracker()
}
