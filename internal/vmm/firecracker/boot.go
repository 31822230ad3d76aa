package firecracker

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"

	"banger/internal/vmm"
)

// BaseBootArgs start every guest's command line. Firecracker replaces its
// own default command line with boot_args, so what a guest needs from
// that default comes back here: the serial console (Firecracker's
// stdout), reboot=k so a guest reboot ends the VMM, panic=1, and the
// i8042 options that make the minimal keyboard controller (through which
// SendCtrlAltDel arrives) probe quickly. Firecracker adds root=/dev/vda
// and ro/rw for the root drive itself.
const BaseBootArgs = "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd"

// Device ids banger gives Firecracker.
const netIfaceID = "eth0"

// apiCall is one request of the boot sequence.
type apiCall struct {
	step   string // what it does, for errors: "attaching drive rootfs"
	method string
	path   string
	body   any
}

// bootPlan is every request that configures a VM before InstanceStart, in
// order: logging first (so the rest is logged), then machine-config →
// boot-source → drives (the first is the root) → network → vsock.
func bootPlan(spec vmm.Spec, l layout, cid uint32) []apiCall {
	plan := []apiCall{
		{"configuring the log", http.MethodPut, "/logger", Logger{LogPath: l.fc.log, Level: "Info", ShowLevel: true}},
		{"configuring metrics", http.MethodPut, "/metrics", Metrics{MetricsPath: l.fc.metrics}},
		{"configuring the machine", http.MethodPut, "/machine-config", MachineConfig{VcpuCount: spec.CPUs, MemSizeMib: spec.MemoryMiB}},
		{"setting the boot source", http.MethodPut, "/boot-source", BootSource{
			KernelImagePath: l.fc.kernel, InitrdPath: l.fc.initrd, BootArgs: bootArgs(spec.Cmdline),
		}},
	}
	for i, d := range spec.Disks {
		plan = append(plan, apiCall{"attaching drive " + d.ID, http.MethodPut, "/drives/" + d.ID, Drive{
			DriveID: d.ID, PathOnHost: l.fc.disks[i], IsRootDevice: i == 0, IsReadOnly: d.ReadOnly,
		}})
	}
	if spec.Net != nil {
		plan = append(plan, apiCall{"attaching network interface " + netIfaceID, http.MethodPut, "/network-interfaces/" + netIfaceID,
			NetworkInterface{IfaceID: netIfaceID, HostDevName: spec.Net.TAP, GuestMac: spec.Net.MAC}})
	}
	plan = append(plan, apiCall{"attaching vsock", http.MethodPut, "/vsock", Vsock{GuestCid: cid, UdsPath: l.fc.vsock}})
	return plan
}

// MinVersion is the oldest Firecracker release whose API the driver
// speaks (the oldest release still supported upstream).
var MinVersion = [2]int{1, 15}

// checkVersion refuses a Firecracker older than MinVersion: its API would
// reject fields the driver sends, or lack ones it needs.
func checkVersion(ctx context.Context, c *Client) error {
	v, err := c.Version(ctx)
	if err != nil {
		return fmt.Errorf("checking the firecracker version: %w", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("checking the firecracker version: cannot parse %q", v)
	}
	if major < MinVersion[0] || (major == MinVersion[0] && minor < MinVersion[1]) {
		return fmt.Errorf("firecracker %s is too old: banger needs v%d.%d or newer; install a newer release or point firecracker_bin at one",
			v, MinVersion[0], MinVersion[1])
	}
	return nil
}

// configure sends the plan one request at a time.
func configure(ctx context.Context, c *Client, plan []apiCall) error {
	for _, call := range plan {
		if err := c.do(ctx, call.method, call.path, call.body, nil); err != nil {
			return fmt.Errorf("%s: %w", call.step, err)
		}
	}
	return nil
}

// bootArgs is the command line Firecracker gets: BaseBootArgs, then
// banger's own (root, network) arguments.
func bootArgs(cmdline string) string {
	cmdline = strings.TrimSpace(cmdline)
	if cmdline == "" {
		return BaseBootArgs
	}
	return BaseBootArgs + " " + cmdline
}

// guestCID is spec.VsockCID, or one derived from the runtime dir: stable
// for the VM, and 3 or more (0-2 are reserved; 2^32-1 is VMADDR_CID_ANY).
// Hybrid vsock is private to each Firecracker process, so CIDs need not
// be unique across VMs; a stable one keeps the guest's view constant.
func guestCID(spec vmm.Spec) uint32 {
	if spec.VsockCID >= 3 {
		return spec.VsockCID
	}
	h := fnv.New32a()
	h.Write([]byte(spec.RuntimeDir))
	return 3 + h.Sum32()%(1<<32-4)
}
