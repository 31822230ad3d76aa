//go:build e2e

package qemu_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/disk"
	"banger/internal/testutil/fixture"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
	"banger/internal/vmmtest"
)

func TestConformance(t *testing.T) {
	fixture.Require(t, "qemu-system-x86_64")
	k := fixture.DebianKernel(t)
	rootfs := fixture.BusyboxRootfs(t, fixture.EchoInit)
	vmmtest.Run(t, vmmtest.Setup{
		NewDriver: func(t *testing.T) vmm.Driver { return qemu.New(qemu.Options{Accel: os.Getenv("BANGER_QEMU_ACCEL")}) },
		Spec: func(t *testing.T) vmm.Spec {
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
				Name: "conf", RuntimeDir: rt, ConsoleLog: filepath.Join(dir, "console.log"),
				CPUs: 1, MemoryMiB: 256, Kernel: k.Vmlinuz, Initrd: k.Initrd,
				Cmdline: "root=/dev/vda quiet", Disks: []vmm.Disk{{ID: "rootfs", Path: root}},
			}
		},
		Ping: echoPing,
		Boot: 2 * time.Minute,
	})
}

// echoPing writes a token and expects the fixture's echo loop to send it back.
func echoPing(ctx context.Context, conn net.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	token := []byte(fmt.Sprintf("ping-%d\n", time.Now().UnixNano()))
	if _, err := conn.Write(token); err != nil {
		return err
	}
	got := make([]byte, len(token))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if !bytes.Equal(got, token) {
		return fmt.Errorf("echo = %q, want %q", got, token)
	}
	return nil
}
