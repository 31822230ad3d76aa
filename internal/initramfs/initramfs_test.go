package initramfs

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeModule writes a relocatable ELF with a .modinfo section naming deps.
// It uses the system assembler-free route: a minimal ELF built by hand is
// overkill, so the test compiles nothing and instead checks the parser
// against objcopy output when available.
func fakeModule(t *testing.T, path, depends string) {
	t.Helper()
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("objcopy not installed (binutils)")
	}
	tmp := filepath.Join(t.TempDir(), "info")
	os.WriteFile(tmp, []byte("license=GPL\x00depends="+depends+"\x00name=x\x00"), 0o644)
	base := filepath.Join(t.TempDir(), "empty.o")
	// An empty relocatable object: copy the section into /bin/true's
	// ELF header class by writing one from scratch with objcopy.
	if out, err := exec.Command("objcopy", "-I", "binary", "-O", "elf64-x86-64", "-B", "i386:x86-64", tmp, base).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v %s", err, out)
	}
	if out, err := exec.Command("objcopy", "--rename-section", ".data=.modinfo", base, path).CombinedOutput(); err != nil {
		t.Fatalf("objcopy rename: %v %s", err, out)
	}
	if f, err := elf.Open(path); err != nil || f.Section(".modinfo") == nil {
		t.Fatalf("fake module %s has no .modinfo (%v)", path, err)
	}
}

func TestLoadOrderPutsDependenciesFirst(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "kernel/drivers/virtio"), 0o755)
	os.MkdirAll(filepath.Join(root, "kernel/drivers/block"), 0o755)
	os.MkdirAll(filepath.Join(root, "kernel/drivers/net"), 0o755)
	fakeModule(t, filepath.Join(root, "kernel/drivers/virtio/virtio.ko"), "")
	fakeModule(t, filepath.Join(root, "kernel/drivers/virtio/virtio_ring.ko"), "virtio")
	fakeModule(t, filepath.Join(root, "kernel/drivers/block/virtio_blk.ko"), "virtio,virtio_ring")
	fakeModule(t, filepath.Join(root, "kernel/drivers/net/net-failover.ko"), "")
	fakeModule(t, filepath.Join(root, "kernel/drivers/net/virtio_net.ko"), "virtio_ring,net_failover,virtio")
	m, err := ScanModules(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.LoadOrder([]string{"virtio_blk", "virtio-net"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_blk", "net_failover", "virtio_net"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("load order (-want +got):\n%s", diff)
	}
	if _, err := m.LoadOrder([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "module nope not found") {
		t.Errorf("missing module err = %v", err)
	}
}

// TestCPIOExtractsWithBusybox checks the archive against a real cpio
// reader: busybox's.
func TestCPIOExtractsWithBusybox(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	var buf bytes.Buffer
	err = WriteCPIO(&buf, []Entry{
		{Path: "d", Mode: fs.ModeDir | 0o750},
		{Path: "d/f", Mode: 0o640, Data: []byte("hello")},
		{Path: "d/odd", Mode: 0o755, Data: []byte("abc")},
		{Path: "d/l", Mode: fs.ModeSymlink | 0o777, Link: "f"},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio: %v: %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "d/f")); string(b) != "hello" {
		t.Errorf("d/f = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "d/odd")); string(b) != "abc" {
		t.Errorf("d/odd = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "d/l")); l != "f" {
		t.Errorf("d/l -> %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "d/f")); fi.Mode().Perm() != 0o640 {
		t.Errorf("d/f mode = %v", fi.Mode())
	}
}
