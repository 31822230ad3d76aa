package initramfs

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// Modules indexes the .ko files of one kernel release directory
// (lib/modules/<release>) by module name.
type Modules struct {
	Root  string            // the release directory
	paths map[string]string // name -> path relative to Root
}

// ScanModules walks root for .ko files. Names use '_' like the kernel
// does ("virtio-rng" and "virtio_rng" are the same module).
func ScanModules(root string) (*Modules, error) {
	m := &Modules{Root: root, paths: map[string]string{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(root, p)
			m.paths[modName(filepath.Base(p))] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning modules in %s: %w", root, err)
	}
	return m, nil
}

func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(file, ".ko"), "-", "_")
}

// Path returns a module's path relative to Root.
func (m *Modules) Path(name string) (string, bool) {
	p, ok := m.paths[modName(name)]
	return p, ok
}

// LoadOrder returns the modules to load for names, dependencies first,
// each once. Names the kernel has built in are the caller's to skip.
func (m *Modules) LoadOrder(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		n = modName(n)
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		}
		rel, ok := m.paths[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) not found under %s", n, from, m.Root)
			}
			return fmt.Errorf("module %s not found under %s", n, m.Root)
		}
		state[n] = 1
		deps, err := depends(filepath.Join(m.Root, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// depends reads the "depends=" field of a module's .modinfo section.
func depends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .modinfo of %s: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
