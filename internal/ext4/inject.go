package ext4

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Inject writes files into image with one debugfs session, replacing
// existing files of the same path and creating missing parent
// directories (mode 0755, root). Paths must be absolute and clean.
func Inject(ctx context.Context, image string, files []File) error {
	tmp, err := os.MkdirTemp("", "banger-inject-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var script []string
	dirs := map[string]bool{}
	for i, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("injecting %q: path must be absolute and clean", f.Path)
		}
		for _, d := range parentDirs(f.Path) {
			if !dirs[d] {
				dirs[d] = true
				script = append(script, "mkdir "+quote(d))
			}
		}
		cmds, err := fileCommands(f, filepath.Join(tmp, fmt.Sprint(i)))
		if err != nil {
			return err
		}
		script = append(script, cmds...)
	}
	return runScript(ctx, image, tmp, script)
}

func fileCommands(f File, local string) ([]string, error) {
	dir, base := path.Dir(f.Path), path.Base(f.Path)
	p := quote(f.Path)
	var cmds []string
	switch {
	case f.Mode.IsDir():
		cmds = []string{"mkdir " + p}
	case f.Mode&fs.ModeSymlink != 0:
		cmds = []string{"rm " + p, "symlink " + p + " " + quote(f.Link)}
		return cmds, nil // symlink modes and owners are not meaningful here
	default:
		if err := os.WriteFile(local, f.Data, 0o600); err != nil {
			return nil, err
		}
		cmds = []string{"rm " + p, "cd " + quote(dir), "write " + quote(local) + " " + quote(base), "cd /"}
	}
	return append(cmds,
		fmt.Sprintf("sif %s mode 0%o", p, unixMode(f.Mode)),
		fmt.Sprintf("sif %s uid %d", p, f.UID),
		fmt.Sprintf("sif %s gid %d", p, f.GID)), nil
}

// benign are debugfs lines that are not errors: complaints idempotent
// scripts expect (creating a directory that exists, removing a file that
// does not) and write's report of the inode it used.
var benign = []string{"File exists", "File not found by ext2_lookup", "Ext2 directory already exists", "Allocated inode:"}

func runScript(ctx context.Context, image, tmp string, script []string) error {
	scriptPath := filepath.Join(tmp, "script")
	if err := os.WriteFile(scriptPath, []byte(strings.Join(script, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	out, err := run(ctx, "debugfs", "-w", "-f", scriptPath, image)
	if err != nil {
		return fmt.Errorf("writing files into %s: %w", image, err)
	}
	var errs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "debugfs") || isBenign(line) {
			continue
		}
		errs = append(errs, line)
	}
	if len(errs) > 0 {
		return fmt.Errorf("writing files into %s: debugfs: %s", image, strings.Join(errs, "; "))
	}
	return nil
}

func isBenign(line string) bool {
	for _, b := range benign {
		if strings.Contains(line, b) {
			return true
		}
	}
	return false
}

// parentDirs lists the directories above p, outermost first.
func parentDirs(p string) []string {
	var out []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) < len(out[j]) })
	return out
}

// unixMode encodes Go mode bits as an ext4 i_mode (type and permissions).
func unixMode(m fs.FileMode) uint32 {
	perm := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	if m.IsDir() {
		return 0o040000 | perm
	}
	return 0o100000 | perm
}
