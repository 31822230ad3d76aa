package fcstandin

import (
	"fmt"
	"os"
	"strings"
)

// tamperMemory does what Config.Tamper asks to the memory file at path,
// which the stand-in has just written: it stands for a compromised
// Firecracker leaving something other than its own file where the host
// expects the memory.
func (m *machine) tamperMemory(path string) error {
	if m.tamper == "" {
		return nil
	}
	kind, arg, ok := strings.Cut(m.tamper, "=")
	if !ok || arg == "" {
		return fmt.Errorf("tamper %q is not memory-symlink=TARGET or memory-link=PATH", m.tamper)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	switch kind {
	case "memory-symlink":
		return os.Symlink(arg, path)
	case "memory-link":
		return os.Link(m.host(arg), path)
	}
	return fmt.Errorf("tamper %q is not memory-symlink=TARGET or memory-link=PATH", m.tamper)
}
