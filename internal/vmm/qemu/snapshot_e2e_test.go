//go:build e2e

package qemu_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/disk"
	"banger/internal/testutil/fixture"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
	"banger/internal/vmmtest"
)

// counterInit is a busybox init whose guest counts seconds from boot in
// /tmp/count and answers on the agent port: "count" with its boot id and
// the count, any other line with itself (the conformance suite's ping).
const counterInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
boot=$(cat /proc/sys/kernel/random/uuid)
echo "fixture: up $boot"
(n=0; while true; do n=$((n+1)); echo $n >/tmp/count.new; mv /tmp/count.new /tmp/count; sleep 1; done) &
for ev in /sys/class/input/event*; do
	if [ "$(cat $ev/device/name 2>/dev/null)" = "Power Button" ]; then
		(head -c 1 /dev/input/$(basename $ev) >/dev/null; poweroff -f) &
	fi
done
for p in /sys/class/virtio-ports/*; do
	if [ "$(cat $p/name)" = "org.banger.agent" ]; then
		port=/dev/$(basename $p)
	fi
done
while true; do
	exec 3<>"$port"
	while read -r line <&3; do
		if [ "$line" = count ]; then echo "count $boot $(cat /tmp/count)" >&3; else echo "$line" >&3; fi
	done
	exec 3<&-
	sleep 0.1
done
`

func TestSnapshotConformance(t *testing.T) {
	fixture.Require(t, "qemu-system-x86_64")
	for _, fileMemory := range []bool{false, true} {
		t.Run(map[bool]string{false: "AnonymousMemory", true: "FileMemory"}[fileMemory], func(t *testing.T) {
			vmmtest.RunSnapshot(t, vmmtest.SnapshotSetup{
				Setup: vmmtest.Setup{
					NewDriver: func(t *testing.T) vmm.Driver {
						return qemu.New(qemu.Options{Accel: os.Getenv("BANGER_QEMU_ACCEL"), MemoryDir: memoryDir(t, fileMemory)})
					},
					Spec: func(t *testing.T) vmm.Spec { return counterSpec(t, 256) },
					Ping: echoPing,
					Boot: 2 * time.Minute,
				},
				Counter: readCounter,
			})
		})
	}
}

// counterSpec is a spec booting counterInit on a private copy of its
// rootfs, with a runtime dir of its own.
func counterSpec(t testing.TB, memMiB int) vmm.Spec {
	k := fixture.DebianKernel(t)
	rootfs := fixture.BusyboxRootfs(t, counterInit)
	rt, err := os.MkdirTemp("", "bgvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs.ext4")
	if _, err := disk.Copy(context.Background(), rootfs, root); err != nil {
		t.Fatal(err)
	}
	return vmm.Spec{
		Name: "snap", RuntimeDir: rt, ConsoleLog: filepath.Join(dir, "console.log"),
		CPUs: 1, MemoryMiB: memMiB, Kernel: k.Vmlinuz, Initrd: k.Initrd,
		Cmdline: "root=/dev/vda quiet", Disks: []vmm.Disk{{ID: "rootfs", Path: root}},
	}
}

// readCounter asks counterInit for its boot id and count.
func readCounter(ctx context.Context, conn net.Conn) (string, int, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("count\n")); err != nil {
		return "", 0, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "count" {
		return "", 0, fmt.Errorf("counter reply %q", line)
	}
	n, err := strconv.Atoi(f[2])
	return f[1], n, err
}

// memoryDir is a directory for guests' memory files, or "" for
// anonymous memory.
func memoryDir(t *testing.T, file bool) string {
	if !file {
		return ""
	}
	return t.TempDir()
}
