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
	// UID and GID are what Firecracker runs as. The VM's own writable
	// disks and its log and metrics files are given to them; shared
	// read-only inputs (kernel, initrd, read-only disks, saved states)
	// keep their owner and are readable by GID only.
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
// disks under the names jailLayout gives them, and the log and metrics
// files. A hard link is the file itself, so what the jail may do with a
// link it may do with the original: only what this VM alone owns and
// writes (its writable disks, log, metrics) is given to the jail's user;
// the kernel, initrd and read-only disks, which other VMs share, are only
// made readable by the jail's group (see shareRead).
func (j *Jailer) prepareJail(spec vmm.Spec, l layout) error {
	os.RemoveAll(filepath.Dir(l.jailRoot)) // a leftover of an earlier run
	if err := os.MkdirAll(l.jailRoot, 0o750); err != nil {
		return fmt.Errorf("creating chroot %s: %w", l.jailRoot, err)
	}
	// A list, not a map by source: one file may be linked twice (a
	// kernel that is also the initrd, one image as two disks).
	type link struct {
		src, dst string
		own      bool // the VM's own and written by it: the jail's
	}
	links := []link{{spec.Kernel, l.fc.kernel, false}}
	if spec.Initrd != "" {
		links = append(links, link{spec.Initrd, l.fc.initrd, false})
	}
	for i, d := range spec.Disks {
		links = append(links, link{d.Path, l.fc.disks[i], !d.ReadOnly})
	}
	for _, k := range links {
		if err := linkIn(k.src, filepath.Join(l.jailRoot, k.dst)); err != nil {
			return err
		}
	}
	// Shared files first: a file this VM also writes (one image as a
	// read-only and a writable disk) ends up the jail's, as it must.
	for _, own := range []bool{false, true} {
		for _, k := range links {
			if k.own != own {
				continue
			}
			dst := filepath.Join(l.jailRoot, k.dst)
			c := fileCheck{what: "the vm's input"}
			var err error
			if own {
				err = j.give(dst, c)
			} else {
				err = j.shareRead(dst, c)
			}
			if err != nil {
				return err
			}
		}
	}
	for _, f := range []string{l.log, l.metrics} {
		// A new file in a new chroot: O_EXCL, and the owner changed
		// through the descriptor, so no name is followed.
		fd, err := os.OpenFile(f, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("creating %s: %w", f, err)
		}
		err = fd.Chown(j.UID, j.GID)
		fd.Close()
		if err != nil {
			return fmt.Errorf("giving %s to the jail's user: %w", f, err)
		}
	}
	return os.Chown(l.jailRoot, j.UID, j.GID)
}

// linkIn hard-links src into a chroot as dst.
func linkIn(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("linking %s into the chroot: %w; put the jailer's chroot base (jailer_chroot_base) on the same filesystem as banger's state directory", src, err)
		}
		return fmt.Errorf("linking %s into the chroot: %w", src, err)
	}
	return nil
}

// give hands a file the VM alone owns and writes to the jail's user.
// path is in the chroot: only a regular file is taken, and changed
// through a descriptor (see openInJail).
func (j *Jailer) give(path string, c fileCheck) error {
	f, err := openInJail(path, os.O_RDONLY, c)
	if err != nil {
		return fmt.Errorf("giving %s to the jail's user: %w", path, err)
	}
	defer f.Close()
	if err := f.Chown(j.UID, j.GID); err != nil {
		return fmt.Errorf("giving %s to the jail's user: %w", path, err)
	}
	return nil
}

// shareRead lets the jail read a file it shares with other VMs (or that
// later VMs start from) and nothing more: the file's group becomes the
// jail's gid with read only, others lose all access (a template's memory
// may hold secrets), and the owner keeps its bits. A file the jail's user
// owns (given to it by an earlier banger) goes back to bangerd's user.
// path is in the chroot: only a regular file is shared, and changed
// through a descriptor, so a link never hands the jail what it points
// to (see openInJail).
//
// A file has one group: VMs sharing it must share the gid, as every VM
// of one bangerd does (jailer_gid is the daemon's). A Firecracker keeps
// what it opened at configuration (kernel, disks) or at a restore
// (state), so a later change of group does not reach a running VM.
func (j *Jailer) shareRead(path string, c fileCheck) error {
	f, err := openInJail(path, os.O_RDONLY, c)
	if err != nil {
		return fmt.Errorf("letting the jail's group read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == j.UID {
		uid = os.Geteuid()
	}
	if err := f.Chown(uid, j.GID); err != nil {
		return fmt.Errorf("letting the jail's group read %s: %w", path, err)
	}
	if err := f.Chmod(fi.Mode().Perm()&0o700 | 0o040); err != nil {
		return fmt.Errorf("letting the jail's group read %s: %w", path, err)
	}
	return nil
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
