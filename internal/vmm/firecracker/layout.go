package firecracker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/vmm"
)

// Runtime file names. They live in Spec.RuntimeDir, or in the chroot when
// the jailer runs Firecracker (the pid file always stays in RuntimeDir).
const (
	apiSocket   = "api.sock"
	vsockSocket = "vsock.sock"
	pidFile     = "firecracker.pid"
	logFile     = "firecracker.log"
	metricsFile = "metrics.json"
	// drivesDir holds a link per disk, named by disk id, to the VM's
	// disk; Firecracker runs in the runtime dir and is given these
	// relative names, which a snapshot records (see Driver.Restore).
	drivesDir = "drives"
	// metricsStateFile holds the metrics totals (see Driver.Metrics); it
	// stays in RuntimeDir under the jailer too, out of Firecracker's reach.
	metricsStateFile = "metrics.state.json"
)

// layout says where one VM's files are: host paths for banger, and the
// paths Firecracker is given, which differ only under the jailer (there
// they are relative to the chroot).
type layout struct {
	runtimeDir string
	jailRoot   string // the chroot on the host; "" without the jailer
	jailCgroup []string

	api, vsock, log, metrics string // host paths
	// drives is the directory of disk links ("" under the jailer, whose
	// chroot holds hard links instead); links are its targets, by name.
	drives string
	links  map[string]string

	fc fcPaths // as Firecracker sees them
}

// fcPaths are the paths Firecracker is told about.
type fcPaths struct {
	api, vsock, log, metrics string
	kernel, initrd           string
	disks                    []string // in Spec.Disks order
}

// plainLayout is the layout without the jailer: one set of paths, except
// for the disks. Firecracker runs in the runtime dir and opens each disk
// as drives/<id>, a link to the disk: a snapshot records the drive paths
// Firecracker was given, and these relative ones name each VM's own
// disks wherever it is restored, not the disks of the VM that was saved.
func plainLayout(spec vmm.Spec) layout {
	rt := spec.RuntimeDir
	l := layout{
		runtimeDir: rt,
		api:        filepath.Join(rt, apiSocket),
		vsock:      filepath.Join(rt, vsockSocket),
		log:        filepath.Join(rt, logFile),
		metrics:    filepath.Join(rt, metricsFile),
		drives:     filepath.Join(rt, drivesDir),
		links:      map[string]string{},
	}
	l.fc = fcPaths{api: l.api, vsock: l.vsock, log: l.log, metrics: l.metrics, kernel: spec.Kernel, initrd: spec.Initrd}
	for _, d := range spec.Disks {
		name := filepath.Join(drivesDir, d.ID)
		l.fc.disks = append(l.fc.disks, name)
		l.links[d.ID] = d.Path
	}
	return l
}

// layoutOf rebuilds a handle's layout (host side) after a restart.
func layoutOf(h *vmm.Handle) layout {
	l := layout{runtimeDir: h.RuntimeDir, jailRoot: h.Sockets[keyJail]}
	dir := h.RuntimeDir
	if l.jailRoot != "" {
		dir = l.jailRoot
		if cg := h.Sockets[keyCgroup]; cg != "" {
			l.jailCgroup = strings.Split(cg, ":")
		}
	}
	if l.jailRoot == "" && dir != "" {
		l.drives = filepath.Join(dir, drivesDir)
	}
	l.api = h.Sockets[keyAPI]
	l.vsock = h.Sockets[keyVsock]
	l.log = filepath.Join(dir, logFile)
	l.metrics = filepath.Join(dir, metricsFile)
	return l
}

// Handle.Sockets keys.
const (
	keyAPI    = "api"
	keyVsock  = "vsock"
	keyJail   = "jail"   // chroot root, jailer only
	keyCgroup = "cgroup" // ':'-separated cgroup dirs the jailer made
)

// handle is the persisted form of a started process and its layout.
func (l layout) handle(p *proc) *vmm.Handle {
	s := map[string]string{keyAPI: l.api, keyVsock: l.vsock}
	if l.jailRoot != "" {
		s[keyJail] = l.jailRoot
		if len(l.jailCgroup) > 0 {
			s[keyCgroup] = strings.Join(l.jailCgroup, ":")
		}
	}
	return &vmm.Handle{Driver: Name, PID: p.pid, StartTime: p.start, RuntimeDir: l.runtimeDir, Sockets: s}
}

// maxSocketPath is the longest path a unix socket can have (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// checkSocketPaths refuses socket paths the kernel cannot bind or dial.
func (l layout) checkSocketPaths() error {
	for _, p := range []string{l.api, l.vsock} {
		if len(p) > maxSocketPath {
			return fmt.Errorf("socket path %s is %d bytes, more than a unix socket allows (%d); use a shorter runtime directory (XDG_RUNTIME_DIR)", p, len(p), maxSocketPath)
		}
	}
	return nil
}

// prepareFiles removes what an earlier VMM left (Firecracker refuses to
// bind an existing socket) and creates the log and metrics files, which
// Firecracker opens but does not create.
func (l layout) prepareFiles() error {
	l.removeFiles()
	for _, f := range []string{l.log, l.metrics} {
		fd, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("creating %s: %w", f, err)
		}
		fd.Close()
	}
	if l.drives == "" {
		return nil
	}
	if err := os.Mkdir(l.drives, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", l.drives, err)
	}
	for id, target := range l.links {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(l.drives, id)); err != nil {
			return fmt.Errorf("linking disk %s: %w", id, err)
		}
	}
	return nil
}

// removeFiles removes the VM's runtime files and, under the jailer, the
// chroot (hard links only: the kernel and disks themselves stay) and the
// cgroups the jailer made.
func (l layout) removeFiles() {
	for _, f := range []string{l.api, l.vsock, l.log, l.metrics, l.metricsState(), pidPath(l.runtimeDir)} {
		if f != "" {
			os.Remove(f)
		}
	}
	if l.drives != "" {
		os.RemoveAll(l.drives) // links only: the disks stay
	}
	if l.jailRoot != "" {
		// <base>/<exec-name>/<id>/root: remove the <id> directory.
		os.RemoveAll(filepath.Dir(l.jailRoot))
	}
	for _, cg := range l.jailCgroup {
		os.Remove(cg)
	}
}

// metricsState is the metrics totals file ("" without a runtime dir).
func (l layout) metricsState() string {
	if l.runtimeDir == "" {
		return ""
	}
	return filepath.Join(l.runtimeDir, metricsStateFile)
}

// pidPath is the pid file in runtime dir rt ("" when rt is).
func pidPath(rt string) string {
	if rt == "" {
		return ""
	}
	return filepath.Join(rt, pidFile)
}

// workDir is where Firecracker runs: the runtime dir, against which the
// relative drive paths resolve; "" under the jailer, which changes into
// its chroot itself.
func (l layout) workDir() string {
	if l.drives == "" {
		return ""
	}
	return l.runtimeDir
}
