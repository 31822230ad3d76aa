package qemu

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Accel returns "kvm" when this host runs QEMU guests under KVM, else
// "tcg". The answer is probed once per driver.
func (d *Driver) Accel(ctx context.Context) string {
	d.accelOnce.Do(func() {
		if d.opts.Accel != "" {
			d.accel = d.opts.Accel
			return
		}
		d.accel = "tcg"
		if d.probeKVM(ctx) {
			d.accel = "kvm"
		}
	})
	return d.accel
}

// probeKVM starts a tiny paused KVM machine with the flags real VMs use.
// Opening /dev/kvm is not enough: nested or restricted hosts can open it
// and still fail to set up vCPUs, and QEMU then aborts at start.
func (d *Driver) probeKVM(ctx context.Context) bool {
	f, err := os.OpenFile(d.opts.KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	dir, err := os.MkdirTemp("", "banger-kvm-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	pidPath := filepath.Join(dir, "pid")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.opts.Binary, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "32",
		"-nodefaults", "-no-user-config", "-display", "none", "-S", "-daemonize", "-pidfile", pidPath)
	if err := cmd.Run(); err != nil {
		return false
	}
	if data, err := os.ReadFile(pidPath); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return true
}

// hostTSCKHz reads the host CPU frequency from /proc/cpuinfo; TCG guests
// get it as tsc_early_khz. 0 when unknown.
func hostTSCKHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(mhz * 1000)
			}
		}
	}
	return 0
}
