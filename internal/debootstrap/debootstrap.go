// Package debootstrap builds Debian root filesystems with debootstrap
// (minbase, from the host's apt mirror) and packs directories into ext4
// images.
package debootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultSuite is the Debian release Build installs unless told otherwise.
const DefaultSuite = "bookworm"

// ErrNeedsRoot is returned by Build when the process is not root:
// debootstrap chroots, mounts and creates device nodes.
var ErrNeedsRoot = errors.New("debootstrap needs root (run it as root)")

// Options tune Build.
type Options struct {
	Suite    string   // Debian release; DefaultSuite when empty
	Mirror   string   // Debian mirror URL; AptMirror() when empty
	Packages []string // installed on top of minbase
	// Progress, when set, receives every line debootstrap prints (such
	// as "I: Retrieving InRelease"), in order, from one goroutine.
	Progress func(line string)
}

func (o Options) withDefaults() Options {
	if o.Suite == "" {
		o.Suite = DefaultSuite
	}
	if o.Mirror == "" {
		o.Mirror = AptMirror()
	}
	return o
}

const (
	// stopGrace is how long debootstrap gets, once asked to stop, to
	// unmount what it mounted in the target before it is killed.
	stopGrace = 30 * time.Second
	// outputTail is how many lines of output a failure reports.
	outputTail = 15
)

// Build installs a minbase Debian with opts.Packages into dst, which must
// not exist (or be empty). It works in a temporary directory next to dst
// and renames it into place when complete; on failure or when ctx is
// cancelled the temporary directory is removed and dst is left alone.
// The result carries no SSH host keys and no downloaded .deb files.
// Needs root (ErrNeedsRoot).
func Build(ctx context.Context, dst string, opts Options) (err error) {
	dst, err = filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	if os.Geteuid() != 0 {
		return ErrNeedsRoot
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return errors.New("debootstrap is not installed (not on PATH): install it (apt-get install debootstrap)")
	}
	opts = opts.withDefaults()
	if _, err := args(opts, dst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("debootstrap %s into %s: %w", opts.Suite, dst, err)
	}
	if err := checkEmpty(dst); err != nil {
		return err
	}

	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, discard(tmp))
		}
	}()
	// The directory becomes the image's /.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	a, _ := args(opts, tmp)
	if err := run(ctx, tmp, a, opts); err != nil {
		return err
	}
	if err := strip(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("moving the debootstrapped tree into place: %w (remove %s and build again)", err, dst)
	}
	return nil
}

// args is debootstrap's command line installing opts into target.
func args(opts Options, target string) ([]string, error) {
	a := []string{"--variant=minbase"}
	if len(opts.Packages) > 0 {
		for _, p := range opts.Packages {
			if p == "" || strings.ContainsAny(p, ", \t\n") {
				return nil, fmt.Errorf("debootstrap: package name %q is not valid: list one package per entry", p)
			}
		}
		a = append(a, "--include="+strings.Join(opts.Packages, ","))
	}
	return append(a, opts.Suite, target, opts.Mirror), nil
}

// run runs debootstrap in its own process group, streaming its output
// to opts.Progress. Cancelling ctx sends the group SIGTERM, on which
// debootstrap unmounts what it mounted in the target before exiting.
func run(ctx context.Context, tmp string, args []string, opts Options) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return os.ErrProcessDone
	}
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		pw.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("debootstrap %s: %w", opts.Suite, ctx.Err())
		}
		return fmt.Errorf("starting debootstrap: %w", err)
	}
	pw.Close()

	var last []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if len(last) == outputTail {
				last = last[1:]
			}
			last = append(last, line)
			if opts.Progress != nil {
				opts.Progress(line)
			}
		}
	}()
	werr := cmd.Wait()
	if werr != nil {
		// Whatever debootstrap left running in its group (dpkg in the
		// chroot) goes too.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-scanned:
	case <-time.After(5 * time.Second):
		pr.Close() // something outside the group holds the pipe
		<-scanned
	}
	if werr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("debootstrap %s: %w", opts.Suite, ctx.Err())
	}
	msg := strings.Join(last, "\n")
	if log := logTail(filepath.Join(tmp, "debootstrap", "debootstrap.log")); log != "" {
		msg += "\ndebootstrap.log ends:\n" + log
	}
	return fmt.Errorf("debootstrap %s from %s failed: %v\n%s\ncheck the mirror is reachable (set http_proxy if the host needs a proxy) and has suite %q and packages %s",
		opts.Suite, opts.Mirror, werr, msg, opts.Suite, strings.Join(opts.Packages, ", "))
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > outputTail {
		lines = lines[len(lines)-outputTail:]
	}
	return strings.Join(lines, "\n")
}

// strip removes what must not ship in an image: SSH host keys (every VM
// makes its own at first boot) and the downloaded packages.
func strip(root string) error {
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	for _, p := range append(keys, debs...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cleaning the debootstrapped tree: %w", err)
		}
	}
	return nil
}

// discard removes a failed build's temporary directory, first detaching
// anything still mounted in it so removal never reaches the host's /proc
// or /sys.
func discard(tmp string) error {
	if err := unmountUnder(tmp); err != nil {
		return fmt.Errorf("%w; unmount them, then remove %s", err, tmp)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing the partial tree: %w (remove %s by hand)", err, tmp)
	}
	return nil
}

// checkEmpty fails when dir exists and holds anything: Build never
// overwrites a tree.
func checkEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("debootstrap into %s: %w", dir, err)
	}
	return fmt.Errorf("debootstrap into %s: it already exists; remove it to build again", dir)
}
