// Package debkernel fetches the host's current Debian cloud kernel from its
// apt sources and makes it bootable on a microVM: the package is
// downloaded with apt-get, unpacked with dpkg-deb, and given an initramfs
// (built with busybox) that loads the virtio modules the cloud kernel
// ships as modules.
//
// A fetched kernel is a directory:
//
//	root/        the unpacked package (boot/vmlinuz-<release>, lib/modules/<release>)
//	initrd.gz    the initramfs
package debkernel

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"banger/internal/initramfs"
)

// MetaPackage is the Debian package that depends on the current cloud
// kernel; Fetch resolves it unless Options.Package is set.
const MetaPackage = "linux-image-cloud-amd64"

// Kernel is a fetched kernel. Every path is absolute.
type Kernel struct {
	Release string // uname -r
	Vmlinuz string // bzImage
	Modules string // lib/modules/<release>
	Initrd  string // initramfs loading the virtio modules
}

// Options tune Fetch.
type Options struct {
	// Package is the kernel package to download, such as
	// "linux-image-6.1.0-30-cloud-amd64". Empty means the one
	// MetaPackage depends on in the host's apt cache.
	Package string
	// Progress, when set, receives a short message as each step starts.
	Progress func(msg string)
}

func (o Options) progress(msg string) {
	if o.Progress != nil {
		o.Progress(msg)
	}
}

// Layout of a fetched kernel directory.
const (
	rootDir    = "root"
	initrdGz   = "initrd.gz"
	outputTail = 15 // lines of a failed command's output kept in its error
)

// tools maps each host tool Fetch runs to the Debian package providing it.
var tools = map[string]string{
	"apt-get":   "apt",
	"apt-cache": "apt",
	"dpkg-deb":  "dpkg",
	"busybox":   "busybox-static",
}

// Fetch downloads and unpacks the kernel package into dir and builds its
// initramfs. dir must not exist (or be empty); it appears only once
// complete: the work happens in a temporary directory next to it, removed
// when Fetch fails or ctx is cancelled. apt-get runs with the process
// environment, so http_proxy and friends apply.
func Fetch(ctx context.Context, dir string, opts Options) (Kernel, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel into %s: %w", dir, err)
	}
	if err := checkEmpty(dir); err != nil {
		return Kernel{}, err
	}
	need := []string{"apt-get", "dpkg-deb", "busybox"}
	if opts.Package == "" {
		need = append(need, "apt-cache")
	}
	if err := requireTools(need...); err != nil {
		return Kernel{}, err
	}
	busybox, err := staticBusybox()
	if err != nil {
		return Kernel{}, err
	}

	pkg := opts.Package
	if pkg == "" {
		opts.progress("resolving " + MetaPackage)
		if pkg, err = ResolvePackage(ctx); err != nil {
			return Kernel{}, err
		}
	}

	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	// apt-get drops to the _apt user to download; let it write here.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel: %w", err)
	}

	if err := build(ctx, tmp, pkg, busybox, opts); err != nil {
		return Kernel{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Kernel{}, fmt.Errorf("moving fetched kernel into place: %w (remove %s and fetch again)", err, dir)
	}
	done = true
	return Load(dir)
}

// build downloads pkg into tmp, unpacks it into tmp/root and writes
// tmp/initrd.gz.
func build(ctx context.Context, tmp, pkg, busybox string, opts Options) error {
	pkgs := []string{pkg}
	if mods := modulesPackage(pkg); mods != "" && aptKnows(ctx, mods) {
		pkgs = append(pkgs, mods) // Ubuntu ships the modules apart
	}
	opts.progress("downloading " + strings.Join(pkgs, " "))
	if out, err := run(ctx, tmp, "apt-get", append([]string{"download", "-q"}, pkgs...)...); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("downloading %s: %w", pkg, ctx.Err())
		}
		return fmt.Errorf("downloading %s with apt-get failed: %v\n%s\nrun `apt-get update` and check the mirror in the host's apt sources (/etc/apt/sources.list*) is reachable (set http_proxy if the host needs a proxy)", strings.Join(pkgs, " "), err, tail(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != len(pkgs) {
		return fmt.Errorf("apt-get download %s left %d .deb files, want %d", strings.Join(pkgs, " "), len(debs), len(pkgs))
	}
	for _, deb := range debs {
		opts.progress("unpacking " + filepath.Base(deb))
		if out, err := run(ctx, tmp, "dpkg-deb", "-x", deb, rootDir); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("unpacking %s: %w", pkg, ctx.Err())
			}
			return fmt.Errorf("unpacking %s with dpkg-deb failed: %v\n%s\ncheck there is free space in %s", filepath.Base(deb), err, tail(out), filepath.Dir(tmp))
		}
		if err := os.Remove(deb); err != nil {
			return fmt.Errorf("removing %s: %w", deb, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fetching %s: %w", pkg, err)
	}

	rel, modules, err := modulesDir(tmp)
	if err != nil {
		return fmt.Errorf("package %s: %w; is it a kernel image package?", pkg, err)
	}
	if _, err := os.Stat(vmlinuz(tmp, rel)); err != nil {
		return fmt.Errorf("package %s has no boot/vmlinuz-%s; is it a kernel image package?", pkg, rel)
	}
	opts.progress("building initramfs for " + rel)
	if err := writeInitrd(filepath.Join(tmp, initrdGz), modules, busybox); err != nil {
		return fmt.Errorf("building initramfs for %s: %w", rel, err)
	}
	return nil
}

// UbuntuMetaPackage is the Ubuntu counterpart of MetaPackage: the kernel
// flavour for virtual machines, with its modules in a separate
// linux-modules-* package.
const UbuntuMetaPackage = "linux-image-kvm"

// ResolvePackage returns the kernel package MetaPackage (or, on Ubuntu
// hosts, UbuntuMetaPackage) depends on in the host's apt cache (apt-cache
// depends).
func ResolvePackage(ctx context.Context) (string, error) {
	if err := requireTools("apt-cache"); err != nil {
		return "", err
	}
	var lastOut []byte
	for _, meta := range []string{MetaPackage, UbuntuMetaPackage} {
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", meta).CombinedOutput()
		if ctx.Err() != nil {
			return "", fmt.Errorf("resolving %s: %w", meta, ctx.Err())
		}
		if err != nil {
			lastOut = out
			continue
		}
		if pkg, ok := parseDepends(out); ok {
			return pkg, nil
		}
	}
	return "", fmt.Errorf("apt-cache knows neither %s (Debian) nor %s (Ubuntu)%s: run `apt-get update` and check the host's apt sources include the distribution's main archive (amd64)",
		MetaPackage, UbuntuMetaPackage, strings.TrimRight("\n"+tail(lastOut), "\n"))
}

// modulesPackage names the package holding the modules of kernel image
// package pkg where the distribution splits them out (Ubuntu:
// linux-image-6.8.0-45-kvm -> linux-modules-6.8.0-45-kvm).
func modulesPackage(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, "linux-image-")
	if !ok || strings.HasPrefix(rest, "unsigned-") {
		return ""
	}
	return "linux-modules-" + rest
}

// aptKnows reports whether the host's apt cache has a candidate for pkg.
func aptKnows(ctx context.Context, pkg string) bool {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).CombinedOutput()
	return err == nil && strings.Contains(string(out), "Package: "+pkg)
}

// parseDepends picks the kernel image package out of `apt-cache depends`
// output: the first "Depends: linux-image-..." line.
func parseDepends(out []byte) (string, bool) {
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], true
		}
	}
	return "", false
}

// Load reads a kernel Fetch wrote to dir.
func Load(dir string) (Kernel, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Kernel{}, fmt.Errorf("loading kernel: %w", err)
	}
	rel, modules, err := modulesDir(dir)
	if err != nil {
		return Kernel{}, fmt.Errorf("%s holds no fetched kernel: %w; remove it and fetch again", dir, err)
	}
	k := Kernel{
		Release: rel,
		Vmlinuz: vmlinuz(dir, rel),
		Modules: modules,
		Initrd:  filepath.Join(dir, initrdGz),
	}
	for _, p := range []string{k.Vmlinuz, k.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, fmt.Errorf("kernel in %s is incomplete: %w; remove it and fetch again", dir, err)
		}
	}
	return k, nil
}

func vmlinuz(dir, rel string) string {
	return filepath.Join(dir, rootDir, "boot", "vmlinuz-"+rel)
}

// modulesDir finds the single lib/modules/<release> of the unpacked
// package (usr/lib/modules in merged-/usr packages).
func modulesDir(dir string) (release, path string, err error) {
	for _, base := range []string{"lib/modules", "usr/lib/modules"} {
		base = filepath.Join(dir, rootDir, base)
		ents, err := os.ReadDir(base)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		var rels []string
		for _, e := range ents {
			if e.IsDir() {
				rels = append(rels, e.Name())
			}
		}
		if len(rels) != 1 {
			return "", "", fmt.Errorf("%s has %d kernel releases, want 1", base, len(rels))
		}
		return rels[0], filepath.Join(base, rels[0]), nil
	}
	return "", "", fmt.Errorf("no %s/lib/modules/<release>", rootDir)
}

func writeInitrd(path, modules, busybox string) error {
	mods, err := initramfs.ScanModules(modules)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := initramfs.Write(f, initramfs.Options{Busybox: busybox, Modules: mods, Load: initramfs.DefaultLoad}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkEmpty fails when dir exists and holds anything: Fetch never
// overwrites a kernel.
func checkEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetching kernel into %s: %w", dir, err)
	}
	return fmt.Errorf("fetching kernel into %s: it already exists; load it, or remove it to fetch again", dir)
}

func requireTools(names ...string) error {
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s is not installed (not on PATH): install it (apt-get install %s)", name, tools[name])
		}
	}
	return nil
}

// staticBusybox returns the busybox on PATH, which must be statically
// linked: it runs inside the initramfs, where there is no libc.
func staticBusybox() (string, error) {
	path, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox is not installed (not on PATH): install it (apt-get install busybox-static)")
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading busybox at %s: %w; install a static one (apt-get install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("busybox at %s is dynamically linked, but the initramfs needs a static one: install it (apt-get install busybox-static)", path)
		}
	}
	return path, nil
}

// run runs name in dir with the process environment and returns its
// combined output.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// tail is the last outputTail lines of a command's output.
func tail(out []byte) string {
	lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
	if len(lines) > outputTail {
		lines = lines[len(lines)-outputTail:]
	}
	return strings.Join(lines, "\n")
}
