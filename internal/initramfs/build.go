package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Options say what goes into the initramfs.
type Options struct {
	// Busybox is the path of a statically linked busybox; it provides the
	// shell, insmod, mount and switch_root.
	Busybox string
	// Modules indexes the kernel's modules; Load names the ones to load
	// (dependencies are added).
	Modules *Modules
	Load    []string
}

// DefaultLoad is what a microVM needs when the kernel builds these as
// modules: its disks, network, agent port, vsock and entropy, plus the
// ACPI power button (and evdev to read it) so a VMM-level power-down
// reaches the guest.
var DefaultLoad = []string{"virtio_mmio", "virtio_blk", "virtio_net", "virtio_console", "vmw_vsock_virtio_transport", "virtio_rng", "button", "evdev"}

// initScript loads the modules, mounts the root named by root= (default
// /dev/vda) and hands over to init= (default /sbin/init).
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules.load); do
	insmod "/lib/modules/$m" 2>/dev/null || echo "initramfs: loading $m failed" >/dev/kmsg
done
root=/dev/vda init=/sbin/init fstype=ext4 mode=rw
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	root=*) root="${arg#root=}" ;;
	init=*) init="${arg#init=}" ;;
	rootfstype=*) fstype="${arg#rootfstype=}" ;;
	ro) mode=ro ;;
	esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if ! mount -t "$fstype" -o "$mode" "$root" /newroot; then
	echo "initramfs: cannot mount root $root; check the image's rootfs" >/dev/kmsg
	poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot "$init"
`

// Write writes a gzip-compressed initramfs to w.
func Write(w io.Writer, opts Options) error {
	entries, err := entries(opts)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err := WriteCPIO(zw, entries); err != nil {
		return err
	}
	return zw.Close()
}

func entries(opts Options) ([]Entry, error) {
	bb, err := os.ReadFile(opts.Busybox)
	if err != nil {
		return nil, fmt.Errorf("reading busybox: %w", err)
	}
	es := []Entry{
		dir("bin"), dir("dev"), dir("proc"), dir("sys"), dir("newroot"), dir("etc"), dir("lib"), dir("lib/modules"),
		{Path: "bin/busybox", Mode: 0o755, Data: bb},
		{Path: "bin/sh", Mode: fs.ModeSymlink | 0o777, Link: "busybox"},
		{Path: "init", Mode: 0o755, Data: []byte(initScript)},
	}
	var order []string
	if opts.Modules != nil {
		names, err := opts.Modules.LoadOrder(opts.Load)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, n := range names {
			rel, _ := opts.Modules.Path(n)
			data, err := os.ReadFile(path.Join(opts.Modules.Root, rel))
			if err != nil {
				return nil, fmt.Errorf("reading module %s: %w", n, err)
			}
			for _, d := range parents(rel) {
				if !seen[d] {
					seen[d] = true
					es = append(es, dir("lib/modules/"+d))
				}
			}
			es = append(es, Entry{Path: "lib/modules/" + rel, Mode: 0o644, Data: data})
			order = append(order, rel)
		}
	}
	es = append(es, Entry{Path: "etc/modules.load", Mode: 0o644, Data: []byte(strings.Join(order, "\n") + "\n")})
	return es, nil
}

func dir(p string) Entry { return Entry{Path: p, Mode: fs.ModeDir | 0o755} }

// parents lists the directories leading to rel, outermost first.
func parents(rel string) []string {
	var out []string
	for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}
