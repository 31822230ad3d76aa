//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/disk"
	"banger/internal/kernel"
	"banger/internal/testutil/fixture"
)

// TestFirecrackerKernelBootsOnMicrovm boots the kernel that
// scripts/build-firecracker-kernel makes under QEMU -M microvm,acpi=off.
// That machine announces its virtio-mmio devices on the kernel command
// line (virtio_mmio.device=...) exactly as Firecracker does, and passes no
// initrd, so a boot that reaches the busybox init and echoes over the
// virtio-serial port proves the config: virtio-mmio cmdline devices,
// virtio-blk, ext4, serial console and virtio console all built in.
//
// The kernel is $BANGER_FC_KERNEL, else firecracker-kernel/vmlinux in the
// fixture cache (where the script's --out-dir should point); without one
// the test skips.
func TestFirecrackerKernelBootsOnMicrovm(t *testing.T) {
	vmlinux := os.Getenv("BANGER_FC_KERNEL")
	if vmlinux == "" {
		vmlinux = filepath.Join(fixture.Dir(t), "firecracker-kernel", "vmlinux")
	}
	if _, err := os.Stat(vmlinux); err != nil {
		t.Skipf("no Firecracker kernel (%v); build one with scripts/build-firecracker-kernel --out-dir %s, or set BANGER_FC_KERNEL",
			err, filepath.Dir(vmlinux))
	}
	fixture.Require(t, "qemu-system-x86_64")
	if f, err := kernel.Format(vmlinux); err != nil || f != kernel.FormatELF {
		t.Fatalf("%s is %q (%v), want an ELF vmlinux as Firecracker boots", vmlinux, f, err)
	}
	checkBuiltIn(t, filepath.Join(filepath.Dir(vmlinux), "config"))
	dir, err := os.MkdirTemp("", "fck")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	rootfs := filepath.Join(dir, "rootfs.ext4")
	if _, err := disk.Copy(context.Background(), fixture.BusyboxRootfs(t, fixture.EchoInit), rootfs); err != nil {
		t.Fatal(err)
	}
	console := filepath.Join(dir, "console.log")
	agentSock := filepath.Join(dir, "agent.sock")

	accel := []string{"-accel", "tcg", "-cpu", "max"}
	cmdline := "console=ttyS0 reboot=k panic=1 root=/dev/vda rw"
	if os.Getenv("BANGER_QEMU_ACCEL") == "kvm" {
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	} else if khz := cpuKHz(); khz > 0 {
		cmdline += fmt.Sprintf(" tsc_early_khz=%d", khz)
	}
	args := append([]string{
		"-M", "microvm,acpi=off,x-option-roms=off,rtc=on",
		"-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", vmlinux, "-append", cmdline,
		"-chardev", "file,id=console,path=" + console, "-serial", "chardev:console",
		"-drive", "id=rootfs,file=" + rootfs + ",format=raw,if=none", "-device", "virtio-blk-device,drive=rootfs",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=agent,path=" + agentSock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.banger.agent",
	}, accel...)
	qemu := exec.Command("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	qemu.Stderr = &stderr
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- qemu.Wait() }()
	t.Cleanup(func() { qemu.Process.Kill(); <-exited })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("qemu exited (%v): %s\nconsole:\n%s", err, stderr.String(), fileTail(console))
		default:
		}
		if last = echoOnce(ctx, agentSock); last == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("no echo from the guest within 3 minutes: %v\nconsole:\n%s", last, fileTail(console))
	}
	booted := time.Since(start)
	out, _ := os.ReadFile(console)
	for _, want := range []string{"virtio_mmio.device=", "fixture: up", "fixture: agent port /dev/vport"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("console lacks %q:\n%s", want, fileTail(console))
		}
	}
	t.Logf("Firecracker kernel %s: echo over virtio-serial %.1fs after qemu started (%s)", vmlinux, booted.Seconds(), accel[1])
}

// checkBuiltIn checks that the kernel configuration the build script left
// beside the kernel has every option of scripts/firecracker-kernel.config
// built in: what the boot below cannot show (vsock, virtio-net, i8042 for
// Ctrl-Alt-Del) is at least compiled in, not a module a Firecracker guest
// without an initrd could never load.
func checkBuiltIn(t *testing.T, config string) {
	t.Helper()
	got, err := os.ReadFile(config)
	if err != nil {
		t.Logf("no kernel configuration beside the kernel (%v): only the boot is checked", err)
		return
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "scripts", "firecracker-kernel.config"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(got), "\n") {
		have[strings.TrimSpace(line)] = true
	}
	n := 0
	for _, line := range strings.Split(string(want), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "CONFIG_") || !strings.HasSuffix(line, "=y") {
			continue
		}
		n++
		if !have[line] {
			t.Errorf("%s: %s is not built in", config, line)
		}
	}
	t.Logf("%s: all %d options of the fragment built in", config, n)
}

// echoOnce sends a token to the guest's echo loop and checks it comes back.
func echoOnce(ctx context.Context, sock string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	token := fmt.Sprintf("fc-kernel-%d\n", time.Now().UnixNano())
	if _, err := io.WriteString(c, token); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != token {
		return fmt.Errorf("echo = %q, want %q", got, token)
	}
	return nil
}

// cpuKHz is the host CPU frequency, which TCG guests need as
// tsc_early_khz; 0 when unknown.
func cpuKHz() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			if mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(mhz * 1000)
			}
		}
	}
	return 0
}

func fileTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
