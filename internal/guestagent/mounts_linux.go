package guestagent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// earlyMount is a pseudo filesystem PID 1 must provide.
type earlyMount struct {
	target, fstype string
	flags          uintptr
	data           string
	optional       bool
}

var earlyMounts = []earlyMount{
	{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", false},
	{"/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", true},
	{"/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", false},
	{"/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
}

// mountEarly mounts what every process expects, skipping what is mounted
// already (an initramfs may have moved /dev, /proc and /sys over).
func mountEarly() error {
	var errs []error
	for _, m := range earlyMounts {
		if mounted(m.target) {
			continue
		}
		os.MkdirAll(m.target, 0o755)
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil && !m.optional {
			errs = append(errs, fmt.Errorf("mounting %s: %w", m.target, err))
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		os.Symlink(target, "/dev/"+name)
	}
	return errors.Join(errs...)
}

// mounted reports whether target is a mount point, from /proc/self/mounts
// (false before /proc is mounted, which is right for /proc).
func mounted(target string) bool {
	return slices.Contains(mountPoints(), target)
}

func mountPoints() []string {
	var out []string
	eachField("/proc/self/mounts", func(f []string) {
		if len(f) >= 2 {
			out = append(out, unescapeMount(f[1]))
		}
	})
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// fstabEntry is a line of /etc/fstab.
type fstabEntry struct {
	spec, target, fstype, opts string
}

// parseFstab reads mountable entries: not swap, not noauto, not "/".
func parseFstab(path string) []fstabEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []fstabEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || strings.HasPrefix(fl[0], "#") {
			continue
		}
		e := fstabEntry{spec: fl[0], target: unescapeMount(fl[1]), fstype: fl[2], opts: "defaults"}
		if len(fl) > 3 {
			e.opts = fl[3]
		}
		if e.fstype == "swap" || e.target == "/" || e.target == "none" || slices.Contains(strings.Split(e.opts, ","), "noauto") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// mountFstab mounts the image's fstab entries (the VM's work disk at /root
// among them). LABEL= and UUID= are resolved through /dev/disk/by-*, which
// needs udev; plain device paths always work.
func mountFstab(path string) error {
	var errs []error
	for _, e := range parseFstab(path) {
		if mounted(e.target) {
			continue
		}
		flags, data := mountOptions(e.opts)
		os.MkdirAll(e.target, 0o755)
		if err := unix.Mount(resolveSpec(e.spec), e.target, e.fstype, flags, data); err != nil {
			errs = append(errs, fmt.Errorf("mounting %s on %s: %w", e.spec, e.target, err))
		}
	}
	return errors.Join(errs...)
}

// mountWork mounts the VM's work disk (banger.work=) on target, trying
// ext4 and then every block filesystem the kernel knows.
func mountWork(dev, target string) error {
	if dev == "" || mounted(target) {
		return nil
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", target, err)
	}
	var err error
	for _, fs := range append([]string{"ext4"}, blockFilesystems()...) {
		if err = unix.Mount(dev, target, fs, 0, ""); err == nil {
			return nil
		}
	}
	return fmt.Errorf("mounting %s on %s: %w", dev, target, err)
}

// mountModules mounts the read-only disk holding the running kernel's
// modules (banger.modules=) on target, over whatever the image has there:
// an image's own modules rarely match the kernel banger boots it with.
func mountModules(dev, target string) error {
	if dev == "" || mounted(target) {
		return nil
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", target, err)
	}
	if err := unix.Mount(dev, target, "ext4", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", dev, target, err)
	}
	return nil
}

// blockFilesystems lists /proc/filesystems entries not marked nodev.
func blockFilesystems() []string {
	var out []string
	eachField("/proc/filesystems", func(f []string) {
		if len(f) == 1 {
			out = append(out, f[0])
		}
	})
	return out
}

func resolveSpec(spec string) string {
	for prefix, dir := range map[string]string{"LABEL=": "/dev/disk/by-label/", "UUID=": "/dev/disk/by-uuid/"} {
		if v, ok := strings.CutPrefix(spec, prefix); ok {
			return dir + v
		}
	}
	return spec
}

var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"sync": unix.MS_SYNCHRONOUS, "noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME,
	"relatime": unix.MS_RELATIME, "bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC,
}

// mountOptions splits fstab options into mount flags and filesystem data.
func mountOptions(opts string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "" || o == "defaults" || o == "rw" || o == "auto" || o == "nofail" || o == "suid" || o == "dev" || o == "exec":
		case strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "comment="):
		case mountFlags[o] != 0:
			flags |= mountFlags[o]
		default:
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

// unmountAll unmounts everything but / in reverse mount order, detaching
// what is busy, then makes / read-only.
func unmountAll() {
	points := mountPoints()
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		if p == "/" {
			continue
		}
		if err := unix.Unmount(p, 0); err != nil {
			unix.Unmount(p, unix.MNT_DETACH)
		}
	}
	unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
}
