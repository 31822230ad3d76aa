package guestagent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// moduleListGlobs are where images list modules to load at boot, as
// systemd-modules-load and Debian's /etc/modules do.
var moduleListGlobs = []string{
	"etc/modules-load.d/*.conf",
	"usr/lib/modules-load.d/*.conf",
	"lib/modules-load.d/*.conf",
	"etc/modules",
}

// listedModules reads module names from the image's lists under root.
func listedModules(root string) []string {
	var names []string
	seen := map[string]bool{}
	for _, g := range moduleListGlobs {
		files, _ := filepath.Glob(filepath.Join(root, g))
		for _, f := range files {
			for _, n := range readModuleList(f) {
				if !seen[modName(n)] {
					seen[modName(n)] = true
					names = append(names, n)
				}
			}
		}
	}
	return names
}

func readModuleList(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		names = append(names, strings.Fields(line)[0]) // /etc/modules allows parameters after the name
	}
	return names
}

// modName normalises a module name: "virtio-net" and "virtio_net" are one.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleDeps is modules.dep: module name to its file and its dependencies'
// names.
type moduleDeps map[string]struct {
	path string
	deps []string
}

func parseModulesDep(path string) (moduleDeps, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	md := moduleDeps{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		file, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		e := md[moduleFileName(file)]
		e.path = file
		for _, d := range strings.Fields(deps) {
			e.deps = append(e.deps, moduleFileName(d))
		}
		md[moduleFileName(file)] = e
	}
	return md, sc.Err()
}

// moduleFileName is "virtio_net" for "kernel/drivers/net/virtio_net.ko.xz".
func moduleFileName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return modName(base)
}

// loadOrder lists the files to load for name, dependencies first.
func (md moduleDeps) loadOrder(name string) ([]string, error) {
	var order []string
	done := map[string]bool{}
	var visit func(n string, depth int) error
	visit = func(n string, depth int) error {
		n = modName(n)
		if done[n] {
			return nil
		}
		e, ok := md[n]
		if !ok {
			return fmt.Errorf("module %s not found in modules.dep", n)
		}
		if depth > 64 {
			return fmt.Errorf("module dependencies of %s loop", name)
		}
		for _, d := range e.deps {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		done[n] = true
		order = append(order, e.path)
		return nil
	}
	return order, visit(name, 0)
}

// loadModules loads the modules the image lists, with their dependencies,
// from root/lib/modules/<release>. Built-in modules and ones already loaded
// are fine; failures are collected.
func loadModules(root, release string) error {
	names := listedModules(root)
	if len(names) == 0 {
		return nil
	}
	dir := filepath.Join(root, "lib", "modules", release)
	md, err := parseModulesDep(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if builtin(dir, n) {
			continue
		}
		files, err := md.loadOrder(n)
		for _, f := range files {
			if err := insertModule(filepath.Join(dir, f)); err != nil {
				errs = append(errs, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// builtin reports whether modules.builtin lists name.
func builtin(dir, name string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && moduleFileName(line) == modName(name) {
			return true
		}
	}
	return false
}

// insertModule loads one .ko file with finit_module, letting the kernel
// decompress .ko.xz/.zst/.gz.
func insertModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening module: %w", err)
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading %s: %w", filepath.Base(path), err)
	}
	return nil
}
