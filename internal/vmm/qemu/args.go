package qemu

import (
	"fmt"
	"path/filepath"
	"strings"

	"banger/internal/vmm"
)

// Runtime file names inside Spec.RuntimeDir.
const (
	pidFile     = "qemu.pid"
	qmpSocket   = "qmp.sock"
	agentSocket = "agent.sock"
	// ramID names the guest memory backend, and so the RAM block a
	// migration stream carries: every VM has the same, whatever backs it,
	// so a state saved from one backend loads into another.
	ramID = "ram0"
	// AgentPortName is the virtio-serial port the guest agent opens.
	AgentPortName = "org.banger.agent"
)

// memBackend says what holds guest memory: anonymous memory when Path
// is empty, else the file at Path, mapped shared (guest writes reach the
// file) or private (copy on write: the file is never written).
type memBackend struct {
	Path  string
	Share bool
}

func (m memBackend) object(sizeMiB int) string {
	if m.Path == "" {
		return fmt.Sprintf("memory-backend-ram,id=%s,size=%dM", ramID, sizeMiB)
	}
	share := "off"
	if m.Share {
		share = "on"
	}
	return fmt.Sprintf("memory-backend-file,id=%s,size=%dM,mem-path=%s,share=%s", ramID, sizeMiB, escape(m.Path), share)
}

// buildArgs is the qemu-system-x86_64 command line for spec: a microvm
// machine, paused (-S) and daemonized so the VM outlives the daemon.
// Everything but paths, the TAP, the MAC and the runtime dir is the
// device model a saved state is bound to (see deviceModel).
func buildArgs(spec vmm.Spec, accel string, tscKHz int, mem memBackend) []string {
	rt := spec.RuntimeDir
	a := []string{
		"-name", "banger-" + spec.Name + ",process=banger-" + spec.Name,
		// ACPI stays on: Debian's stock kernels find virtio-mmio devices
		// through it (they lack VIRTIO_MMIO_CMDLINE_DEVICES), and it gives
		// the guest a power button for system_powerdown.
		"-M", "microvm,x-option-roms=off,rtc=on,memory-backend=" + ramID,
		"-m", fmt.Sprint(spec.MemoryMiB),
		"-object", mem.object(spec.MemoryMiB),
		"-smp", fmt.Sprint(spec.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-no-reboot", "-S", "-daemonize",
		"-pidfile", filepath.Join(rt, pidFile),
		"-qmp", "unix:" + escape(filepath.Join(rt, qmpSocket)) + ",server=on,wait=off",
		"-chardev", "file,id=console,path=" + escape(spec.ConsoleLog) + ",append=on",
		"-serial", "chardev:console",
		"-kernel", spec.Kernel,
		"-append", cmdline(spec.Cmdline, accel, tscKHz),
		"-object", "rng-random,id=rng0,filename=/dev/urandom",
		"-device", "virtio-rng-device,rng=rng0",
	}
	if accel == "kvm" {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg", "-cpu", "max")
	}
	if spec.Initrd != "" {
		a = append(a, "-initrd", spec.Initrd)
	}
	for _, d := range spec.Disks {
		drive := fmt.Sprintf("id=%s,file=%s,format=raw,if=none,discard=unmap,detect-zeroes=unmap", d.ID, escape(d.Path))
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		a = append(a, "-drive", drive, "-device", "virtio-blk-device,drive="+d.ID)
	}
	if spec.Net != nil {
		a = append(a,
			"-netdev", "tap,id=net0,ifname="+spec.Net.TAP+",script=no,downscript=no",
			"-device", "virtio-net-device,netdev=net0,mac="+spec.Net.MAC)
	}
	a = append(a,
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path="+escape(filepath.Join(rt, agentSocket))+",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name="+AgentPortName)
	return a
}

// cmdline appends what every guest needs on this VMM: the serial
// console, reboot handling that makes the guest's reboot end QEMU
// (-no-reboot), and under TCG the TSC frequency, without which the
// guest's calibration hangs on a share of boots.
func cmdline(base, accel string, tscKHz int) string {
	parts := []string{"console=ttyS0", "reboot=k", "panic=1"}
	if accel == "tcg" && tscKHz > 0 {
		parts = append(parts, fmt.Sprintf("tsc_early_khz=%d", tscKHz))
	}
	if base != "" {
		parts = append(parts, base)
	}
	return strings.Join(parts, " ")
}

// escape doubles commas, QEMU's escape inside option values. Options
// that take a bare path (-pidfile, -kernel, -initrd) are not parsed as
// key=value lists and must not be escaped.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
