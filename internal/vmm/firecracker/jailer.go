package firecracker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"banger/internal/vmm"
)

// Jailer runs Firecracker under Firecracker's jailer: a chroot of its
// own, an unprivileged uid/gid, a cgroup and optionally a network
// namespace. The jailer must run as root and match the Firecracker
// release. Required: UID, GID; New makes an empty Binary "jailer", found
// on PATH.
type Jailer struct {
	// Binary is the jailer executable.
	Binary string
	// UID and GID are what Firecracker runs as; the chroot's files are
	// given to them.
	UID, GID int
	// ChrootBase is where chroots are made (the jailer's default is
	// /srv/jailer). The kernel and disks are hard-linked into the chroot,
	// so it must be on the same filesystem as banger's state directory.
	ChrootBase string
	// CgroupVersion is 1 or 2 (0 means 2).
	CgroupVersion int
	// ParentCgroup holds the VMs' cgroups; empty means the jailer's
	// default (the exec file's name).
	ParentCgroup string
	// Cgroups are cgroup file=value limits, e.g. "memory.max=1073741824".
	Cgroups []string
	// NetNS is a network namespace path to join, e.g. /var/run/netns/banger.
	NetNS string
	// ResourceLimits are --resource-limit values, e.g. "no-file=4096".
	ResourceLimits []string
	// CgroupRoot is where the cgroup filesystem is mounted, for cleanup;
	// empty means /sys/fs/cgroup.
	CgroupRoot string
}

const defaultChrootBase = "/srv/jailer"

func (j *Jailer) check() error {
	var errs []error
	if j.Binary == "" {
		errs = append(errs, errors.New("jailer binary is required"))
	}
	if j.UID <= 0 || j.GID <= 0 {
		errs = append(errs, fmt.Errorf("jailer uid and gid must be unprivileged (got %d:%d)", j.UID, j.GID))
	}
	if j.CgroupVersion != 0 && j.CgroupVersion != 1 && j.CgroupVersion != 2 {
		errs = append(errs, fmt.Errorf("jailer cgroup version must be 1 or 2, not %d", j.CgroupVersion))
	}
	for _, kv := range append(append([]string{}, j.Cgroups...), j.ResourceLimits...) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("jailer limit %q is not file=value", kv))
		}
	}
	return errors.Join(errs...)
}

// jailRoot is the chroot the jailer makes for id: <base>/<exec-name>/<id>/root.
func (j *Jailer) jailRoot(fcBin, id string) string {
	base := j.ChrootBase
	if base == "" {
		base = defaultChrootBase
	}
	return filepath.Join(base, filepath.Base(fcBin), id, "root")
}

// jailLayout is the layout of a jailed VM: Firecracker sees fixed names at
// the chroot's top; banger sees them under the chroot.
func (j *Jailer) jailLayout(spec vmm.Spec, fcBin string) layout {
	id := instanceID(spec)
	root := j.jailRoot(fcBin, id)
	in := func(name string) string { return "/" + name }
	l := layout{
		runtimeDir: spec.RuntimeDir,
		jailRoot:   root,
		api:        filepath.Join(root, apiSocket),
		vsock:      filepath.Join(root, vsockSocket),
		log:        filepath.Join(root, logFile),
		metrics:    filepath.Join(root, metricsFile),
		fc: fcPaths{
			api: in(apiSocket), vsock: in(vsockSocket), log: in(logFile), metrics: in(metricsFile),
			kernel: in("vmlinux"),
		},
	}
	if spec.Initrd != "" {
		l.fc.initrd = in("initrd")
	}
	for _, d := range spec.Disks {
		l.fc.disks = append(l.fc.disks, in("drive-"+d.ID))
	}
	l.jailCgroup = j.cgroupDirs(fcBin, id)
	return l
}

// cgroupDirs are the cgroup directories the jailer creates for id, which
// stay behind (empty) when the VM ends.
func (j *Jailer) cgroupDirs(fcBin, id string) []string {
	root := j.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	parent := j.ParentCgroup
	if parent == "" {
		parent = filepath.Base(fcBin)
	}
	if j.CgroupVersion == 1 {
		seen := map[string]bool{}
		var dirs []string
		for _, kv := range j.Cgroups {
			ctrl, _, _ := strings.Cut(kv, ".")
			if !seen[ctrl] {
				seen[ctrl] = true
				dirs = append(dirs, filepath.Join(root, ctrl, parent, id))
			}
		}
		return dirs
	}
	return []string{filepath.Join(root, parent, id)}
}

// prepareJail makes the chroot: hard links to the kernel, initrd and
// disks under the names jailLayout gives them, the log and metrics files,
// all owned by the jail's uid/gid.
func (j *Jailer) prepareJail(spec vmm.Spec, l layout) error {
	os.RemoveAll(filepath.Dir(l.jailRoot)) // a leftover of an earlier run
	if err := os.MkdirAll(l.jailRoot, 0o750); err != nil {
		return fmt.Errorf("creating chroot %s: %w", l.jailRoot, err)
	}
	// A list, not a map by source: one file may be linked twice (a
	// kernel that is also the initrd, one image as two disks).
	links := [][2]string{{spec.Kernel, l.fc.kernel}}
	if spec.Initrd != "" {
		links = append(links, [2]string{spec.Initrd, l.fc.initrd})
	}
	for i, d := range spec.Disks {
		links = append(links, [2]string{d.Path, l.fc.disks[i]})
	}
	for _, link := range links {
		src, dst := link[0], filepath.Join(l.jailRoot, link[1])
		if err := os.Link(src, dst); err != nil {
			if errors.Is(err, syscall.EXDEV) {
				return fmt.Errorf("linking %s into the chroot: %w; put the jailer's chroot base (jailer_chroot_base) on the same filesystem as banger's state directory", src, err)
			}
			return fmt.Errorf("linking %s into the chroot: %w", src, err)
		}
		if err := os.Chown(dst, j.UID, j.GID); err != nil {
			return fmt.Errorf("giving %s to the jail's user: %w", dst, err)
		}
	}
	for _, f := range []string{l.log, l.metrics} {
		fd, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("creating %s: %w", f, err)
		}
		fd.Close()
		if err := os.Chown(f, j.UID, j.GID); err != nil {
			return fmt.Errorf("giving %s to the jail's user: %w", f, err)
		}
	}
	return os.Chown(l.jailRoot, j.UID, j.GID)
}

// argv is the jailer command line that runs fcBin for spec; Firecracker's
// own arguments follow "--".
func (j *Jailer) argv(spec vmm.Spec, fcBin string, l layout) []string {
	a := []string{j.Binary,
		"--id", instanceID(spec),
		"--exec-file", fcBin,
		"--uid", strconv.Itoa(j.UID),
		"--gid", strconv.Itoa(j.GID),
		"--chroot-base-dir", filepath.Dir(filepath.Dir(filepath.Dir(l.jailRoot))),
	}
	v := j.CgroupVersion
	if v == 0 {
		v = 2
	}
	a = append(a, "--cgroup-version", strconv.Itoa(v))
	if j.ParentCgroup != "" {
		a = append(a, "--parent-cgroup", j.ParentCgroup)
	}
	for _, c := range j.Cgroups {
		a = append(a, "--cgroup", c)
	}
	for _, r := range j.ResourceLimits {
		a = append(a, "--resource-limit", r)
	}
	if j.NetNS != "" {
		a = append(a, "--netns", j.NetNS)
	}
	// The jailer passes --id on to Firecracker itself.
	return append(a, "--", "--api-sock", l.fc.api)
}
