// Package debianfs builds the default devbox root filesystem without a
// registry: Debian from a mirror with debootstrap, the devbox steps run
// chrooted in it, written out as a rootfs image and a work-seed image
// (the tree's /root, which VMs mount from their work disk). It needs
// root; the daemon runs it when it is root, and 'banger system setup
// --default-rootfs' runs it for a daemon that is not.
package debianfs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"banger/api"
	"banger/internal/debootstrap"
	"banger/internal/imagebuild"
	"banger/internal/progress"
)

// Packages are installed by debootstrap: a systemd system with what the
// devbox steps and banger's workflows use.
var Packages = []string{
	"systemd-sysv", "udev", "dbus", "openssh-server", "git", "curl", "ca-certificates", "iproute2", "iputils-ping",
	"procps", "less", "sudo", "tar", "gzip", "xz-utils", "unzip", "netcat-openbsd", "rsync",
}

// Files of a built directory.
const (
	RootfsFile   = imagebuild.RootfsFile
	WorkSeedFile = imagebuild.WorkSeedFile
	InfoFile     = "info.json"
)

// Info records how a directory was built.
type Info struct {
	Suite   string    `json:"suite"`
	Mirror  string    `json:"mirror"`
	Created time.Time `json:"created"`
}

// Options tune Build.
type Options struct {
	Mirror string // "" means the host's apt sources
	// Owner, when set (uid, gid >= 0), gets the files Build writes: the
	// directory is built as root for a user's daemon.
	UID, GID int
}

// PreparedDir is where, under a user's cache directory, 'banger system
// setup --default-rootfs' prepares the root filesystem for that user's
// daemon, which makes the default image from it.
func PreparedDir(cacheDir string) string { return filepath.Join(cacheDir, "default-rootfs") }

// Present reports whether dir holds a complete build.
func Present(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, InfoFile))
	return err == nil
}

// Build writes RootfsFile, WorkSeedFile and InfoFile into dir, which must
// not exist; it appears complete or not at all.
func Build(ctx context.Context, dir string, opts Options, p progress.Func) error {
	if os.Geteuid() != 0 {
		return debootstrap.ErrNeedsRoot
	}
	if opts.Mirror == "" {
		opts.Mirror = debootstrap.AptMirror()
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), tempPrefix(dir))
	if err != nil {
		return err
	}
	// Locked until it is gone, so RemoveStale leaves it alone.
	lock, err := lockDir(work)
	if err != nil {
		os.RemoveAll(work)
		return err
	}
	defer lock.Close()
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	suite := debootstrap.SuiteFor(opts.Mirror)
	p.Step("debootstrap", fmt.Sprintf("installing %s from %s", suite, opts.Mirror))
	err = debootstrap.Build(ctx, tree, debootstrap.Options{Suite: suite, Mirror: opts.Mirror, Packages: Packages,
		Progress: func(line string) { p.Emit(api.Event{Step: "log", Message: line}) }})
	if err != nil {
		return err
	}
	for _, s := range imagebuild.DevboxSteps(false) {
		p.Step("step", s.Name)
		if err := chrootScript(ctx, tree, s.Script, p); err != nil {
			return fmt.Errorf("step %s: %w", s.Name, err)
		}
	}
	if err := chrootScript(ctx, tree, imagebuild.CleanupScript(), p); err != nil {
		return fmt.Errorf("cleaning up: %w", err)
	}
	// /root becomes the work-seed: VMs mount their work disk there.
	seed := filepath.Join(work, "seed")
	if err := os.Rename(filepath.Join(tree, "root"), seed); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tree, "root"), 0o700); err != nil {
		return err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	p.Step("ext4", "writing the root filesystem")
	if err := debootstrap.Ext4FromDir(ctx, tree, filepath.Join(out, RootfsFile), 0); err != nil {
		return err
	}
	if err := debootstrap.Ext4FromDir(ctx, seed, filepath.Join(out, WorkSeedFile), 0); err != nil {
		return err
	}
	info, _ := json.MarshalIndent(Info{Suite: suite, Mirror: opts.Mirror, Created: time.Now().UTC()}, "", "  ")
	if err := os.WriteFile(filepath.Join(out, InfoFile), append(info, '\n'), 0o644); err != nil {
		return err
	}
	if opts.UID > 0 {
		for _, p := range []string{out, filepath.Join(out, RootfsFile), filepath.Join(out, WorkSeedFile), filepath.Join(out, InfoFile)} {
			if err := os.Chown(p, opts.UID, opts.GID); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("moving the built root filesystem into place: %w", err)
	}
	return nil
}

// chrootScript runs script with /bin/sh -e chrooted into tree, with the
// process environment (proxies apply); failed downloads are warnings
// (BANGER_BEST_EFFORT=1). Output goes to progress as log lines.
func chrootScript(ctx context.Context, tree string, script []byte, p progress.Func) error {
	lw := progress.NewLineWriter(p, "log")
	cmd := exec.CommandContext(ctx, "chroot", tree, "/bin/sh", "-e", "-c", string(script))
	cmd.Env = append(append(os.Environ(), imagebuild.StepEnv("", true)...),
		"HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	lw.Flush()
	if err != nil {
		return fmt.Errorf("%w; last lines:\n%s", err, lw.Tail())
	}
	return nil
}
