package fcstandin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment of the fake jailer (see InstallJailer), and what it hands
// the stand-in it execs.
const (
	EnvJailer           = "FCSTANDIN_JAILER"             // "1": this process is the fake jailer
	EnvJailerCgroupRoot = "FCSTANDIN_JAILER_CGROUP_ROOT" // where it makes cgroup directories; "" makes none
	EnvJail             = "FCSTANDIN_JAIL"               // the chroot the stand-in enters
	EnvJailUID          = "FCSTANDIN_JAIL_UID"
	EnvJailGID          = "FCSTANDIN_JAIL_GID"
)

// JailerOptions describe a fake jailer for InstallJailer.
type JailerOptions struct {
	// Record is a file the jailer appends what it was asked to do to
	// (ReadRecord returns it as Record.Jailer); the stand-in's record
	// file may be the same.
	Record string
	// CgroupRoot, when set, stands for /sys/fs/cgroup: the jailer makes
	// the VM's cgroup directories under it.
	CgroupRoot string
}

// InstallJailer writes an executable named "jailer" into dir that runs
// this binary as a fake of Firecracker's jailer, and returns its path.
//
// The fake parses the jailer's command line as the real one does (--id,
// --exec-file, --uid, --gid, --chroot-base-dir, --netns, --cgroup,
// --cgroup-version, --parent-cgroup, --resource-limit, then "--" and
// Firecracker's arguments), checks it, makes the chroot
// <base>/<exec-file name>/<id>/root and the cgroup directories, clears
// the environment, changes into the chroot and execs --exec-file (an
// Install'ed stand-in) in the same process with "--id <id>" and the
// arguments after "--". It cannot chroot before the exec, as the real
// jailer does: the stand-in is this test binary, started through a shell
// script, and neither runs inside an empty chroot. So it hands the jail
// over (EnvJail, EnvJailUID, EnvJailGID) and the stand-in enters it
// first thing: chroot and, as root, the jail's uid and gid; where chroot
// is not permitted it stays outside and resolves every path it is given
// under the jail instead. Either way Firecracker's paths are relative to
// the jail.
func InstallJailer(dir string, opts JailerOptions) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("installing the fake jailer: %w", err)
	}
	script := "#!/bin/sh\n" +
		"export " + EnvJailer + "=1\n" +
		"export " + EnvRecord + "=" + shellQuote(opts.Record) + "\n" +
		"export " + EnvJailerCgroupRoot + "=" + shellQuote(opts.CgroupRoot) + "\n" +
		"exec " + shellQuote(self) + " \"$@\"\n"
	path := filepath.Join(dir, "jailer")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("installing the fake jailer: %w", err)
	}
	return path, nil
}

// JailerRun is what a fake jailer was asked to do, as recorded.
type JailerRun struct {
	PID            int      `json:"pid"`
	ID             string   `json:"id"`
	ExecFile       string   `json:"exec_file"`
	UID            int      `json:"uid"`
	GID            int      `json:"gid"`
	Chroot         string   `json:"chroot"`
	NetNS          string   `json:"netns,omitempty"`
	CgroupVersion  int      `json:"cgroup_version"`
	ParentCgroup   string   `json:"parent_cgroup"`
	Cgroups        []string `json:"cgroups,omitempty"`
	ResourceLimits []string `json:"resource_limits,omitempty"`
	Daemonize      bool     `json:"daemonize,omitempty"`
	NewPIDNS       bool     `json:"new_pid_ns,omitempty"`
	// Args are Firecracker's, after "--".
	Args []string `json:"args"`
}

// jailerID is what the jailer takes as --id.
var jailerID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// JailerMain is the fake jailer's main; it returns only on error, with
// the exit code.
func JailerMain(args []string) int {
	run, err := parseJailerArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Jailer error: %v\n", err)
		return 1
	}
	if err := run.prepare(); err != nil {
		fmt.Fprintf(os.Stderr, "Jailer error: %v\n", err)
		return 1
	}
	if rec := os.Getenv(EnvRecord); rec != "" {
		appendJSON(rec, struct {
			Event string `json:"event"`
			*JailerRun
		}{"jailer", run})
	}
	argv := append([]string{run.ExecFile, "--id", run.ID,
		"--start-time-us", strconv.FormatInt(time.Now().UnixMicro(), 10),
		"--start-time-cpu-us", "0", "--parent-cpu-time-us", "0"}, run.Args...)
	env := []string{EnvJail + "=" + run.Chroot, EnvJailUID + "=" + strconv.Itoa(run.UID), EnvJailGID + "=" + strconv.Itoa(run.GID)}
	err = syscall.Exec(run.ExecFile, argv, env)
	fmt.Fprintf(os.Stderr, "Jailer error: Failed to exec into Firecracker: %v\n", err)
	return 1
}

// parseJailerArgs reads the jailer's command line.
func parseJailerArgs(args []string) (*JailerRun, error) {
	r := &JailerRun{PID: os.Getpid(), CgroupVersion: 1, UID: -1, GID: -1}
	base := "/srv/jailer"
	for i := 0; i < len(args); i++ {
		name := args[i]
		switch name {
		case "--":
			r.Args = args[i+1:]
			i = len(args)
			continue
		case "--daemonize":
			r.Daemonize = true
			continue
		case "--new-pid-ns":
			r.NewPIDNS = true
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("Arguments parsing error: %s needs a value", name)
		}
		i++
		val := args[i]
		var err error
		switch name {
		case "--id":
			r.ID = val
		case "--exec-file":
			r.ExecFile = val
		case "--uid":
			r.UID, err = strconv.Atoi(val)
		case "--gid":
			r.GID, err = strconv.Atoi(val)
		case "--chroot-base-dir":
			base = val
		case "--netns":
			r.NetNS = val
		case "--cgroup":
			r.Cgroups = append(r.Cgroups, val)
		case "--cgroup-version":
			r.CgroupVersion, err = strconv.Atoi(val)
		case "--parent-cgroup":
			r.ParentCgroup = val
		case "--resource-limit":
			r.ResourceLimits = append(r.ResourceLimits, val)
		default:
			return nil, fmt.Errorf("Arguments parsing error: Found argument '%s' which wasn't expected, or isn't valid in this context.", name)
		}
		if err != nil {
			return nil, fmt.Errorf("Arguments parsing error: %s %q is not a number", name, val)
		}
	}
	return r, r.check(base)
}

// check validates the arguments as the jailer does and fills in Chroot.
func (r *JailerRun) check(base string) error {
	var errs []error
	if r.ID == "" || r.ExecFile == "" || r.UID < 0 || r.GID < 0 {
		errs = append(errs, errors.New("Arguments parsing error: --id, --exec-file, --uid and --gid are required"))
	}
	if r.ID != "" && !jailerID.MatchString(r.ID) {
		errs = append(errs, fmt.Errorf("Invalid instance ID: %s", r.ID))
	}
	if r.ExecFile != "" {
		if fi, err := os.Stat(r.ExecFile); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("Failed to canonicalize path %s: not a file", r.ExecFile))
		} else if !strings.Contains(filepath.Base(r.ExecFile), "firecracker") {
			errs = append(errs, errors.New("Invalid filename. The filename of `--exec-file` option must contain \"firecracker\""))
		}
	}
	if r.CgroupVersion != 1 && r.CgroupVersion != 2 {
		errs = append(errs, fmt.Errorf("Cgroup error: invalid cgroup version %d", r.CgroupVersion))
	}
	for _, c := range r.Cgroups {
		if k, _, ok := strings.Cut(c, "="); !ok || !strings.Contains(k, ".") {
			errs = append(errs, fmt.Errorf("Invalid format for cgroup: %s", c))
		}
	}
	for _, l := range r.ResourceLimits {
		k, v, _ := strings.Cut(l, "=")
		if _, err := strconv.ParseUint(v, 10, 64); (k != "fsize" && k != "no-file") || err != nil {
			errs = append(errs, fmt.Errorf("Invalid resource argument: %s", l))
		}
	}
	if r.NetNS != "" {
		if _, err := os.Stat(r.NetNS); err != nil {
			errs = append(errs, fmt.Errorf("Failed to open netns %s: %v", r.NetNS, err))
		}
	}
	if r.Daemonize || r.NewPIDNS {
		errs = append(errs, errors.New("the fake jailer does not daemonize or make pid namespaces"))
	}
	if r.ParentCgroup == "" {
		r.ParentCgroup = filepath.Base(r.ExecFile)
	}
	r.Chroot = filepath.Join(base, filepath.Base(r.ExecFile), r.ID, "root")
	return errors.Join(errs...)
}

// prepare makes the chroot and the cgroup directories, and changes into
// the chroot.
func (r *JailerRun) prepare() error {
	if err := os.MkdirAll(r.Chroot, 0o755); err != nil {
		return fmt.Errorf("Failed to create chroot folder: %w", err)
	}
	if root := os.Getenv(EnvJailerCgroupRoot); root != "" {
		for _, dir := range r.cgroupDirs(root) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("Cgroup error: %w", err)
			}
		}
	}
	return os.Chdir(r.Chroot)
}

// cgroupDirs are the VM's cgroups under root: <parent>/<id> on v2, one
// per controller named by --cgroup on v1.
func (r *JailerRun) cgroupDirs(root string) []string {
	if r.CgroupVersion == 2 {
		return []string{filepath.Join(root, r.ParentCgroup, r.ID)}
	}
	var dirs []string
	seen := map[string]bool{}
	for _, c := range r.Cgroups {
		ctrl, _, _ := strings.Cut(c, ".")
		if !seen[ctrl] {
			seen[ctrl] = true
			dirs = append(dirs, filepath.Join(root, ctrl, r.ParentCgroup, r.ID))
		}
	}
	return dirs
}

// enterJail is what the stand-in does first when a jailer started it:
// chroot into the jail and, as root, become the jail's uid and gid. When
// chroot is not permitted it stays outside, in the jail's directory, and
// cfg.Root makes every path it is given relative to the jail.
func (cfg *Config) enterJail(root string, uid, gid int) error {
	if cfg.Record != "" && cfg.recordFile == nil {
		// Opened now: the record file is outside the jail.
		f, err := os.OpenFile(cfg.Record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		cfg.recordFile = f
	}
	if err := syscall.Chroot(root); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("entering the jail %s: %w", root, err)
		}
		cfg.Root, cfg.GuestDir = root, filepath.Join(root, "guest")
		return os.Chdir(root)
	}
	cfg.GuestDir = "/guest" // the guest's state lives with the VM, in the jail
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("becoming gid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("becoming uid %d: %w", uid, err)
	}
	return nil
}
