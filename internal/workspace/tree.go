package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
)

// entry is one file, directory or symlink to send.
type entry struct {
	name string      // slash-separated path inside the tree
	src  string      // host path
	fi   fs.FileInfo // from lstat
	link string      // symlink target
}

// overlayEntries lists the work tree as git sees it: tracked files as they
// are now and untracked files that are not ignored. Deleted files are
// left out, and so are ignored ones.
func overlayEntries(ctx context.Context, r Repo) ([]entry, error) {
	out, err := git(ctx, r.Root, nil, "ls-files", "-z", "--cached")
	if err != nil {
		return nil, fmt.Errorf("listing the files of %s: %w", r.Root, err)
	}
	t := newTree(r.Root)
	for _, name := range splitZ(out) {
		if err := t.addFile(name); err != nil {
			return nil, err
		}
	}
	if err := addUntracked(ctx, r, t); err != nil {
		return nil, err
	}
	return t.sorted(), nil
}

// allEntries lists everything under the work tree root, .git included.
func allEntries(r Repo) ([]entry, error) {
	t := newTree(r.Root)
	if err := t.walk(""); err != nil {
		return nil, err
	}
	return t.sorted(), nil
}

// dirEntries lists dir and everything under it, named under prefix.
func dirEntries(dir, prefix string) ([]entry, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	t := newTree(dir)
	if err := t.walk(""); err != nil {
		return nil, err
	}
	es := append([]entry{{name: "", src: dir, fi: fi}}, t.sorted()...)
	for i := range es {
		es[i].name = path.Join(prefix, es[i].name)
	}
	return es, nil
}

// tree collects entries under root, adding each one's parent directories.
type tree struct {
	root string
	byN  map[string]entry
	// realDir caches whether a leading path is a real directory, not a
	// symlink to one (see leadingOK).
	realDir map[string]bool
}

func newTree(root string) *tree {
	return &tree{root: root, byN: map[string]entry{}, realDir: map[string]bool{}}
}

// leadingOK reports whether every leading component of name (slash path)
// is a real directory. Lstat follows symlinks in leading components, so a
// tracked directory replaced by a link to elsewhere would otherwise bring
// the link target's files into the copy; git treats paths under such a
// link as deleted (has_symlink_leading_path), and so do we.
func (t *tree) leadingOK(name string) (bool, error) {
	dir := path.Dir(name)
	if dir == "." || dir == "/" {
		return true, nil
	}
	if ok, seen := t.realDir[dir]; seen {
		return ok, nil
	}
	ok, err := t.leadingOK(dir)
	if err != nil || !ok {
		t.realDir[dir] = false
		return false, err
	}
	fi, err := os.Lstat(filepath.Join(t.root, filepath.FromSlash(dir)))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		ok = false
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", filepath.Join(t.root, filepath.FromSlash(dir)), err)
	default:
		ok = fi.IsDir()
	}
	t.realDir[dir] = ok
	return ok, nil
}

// present reports whether name is in the work tree as git sees it: it
// exists and no leading component is a symlink or a file.
func (t *tree) present(name string) (fs.FileInfo, bool, error) {
	if ok, err := t.leadingOK(name); err != nil || !ok {
		return nil, false, err
	}
	src := filepath.Join(t.root, filepath.FromSlash(name))
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", src, err)
	}
	return fi, true, nil
}

func (t *tree) sorted() []entry {
	out := make([]entry, 0, len(t.byN))
	for _, e := range t.byN {
		out = append(out, e)
	}
	// A directory sorts before everything under it.
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// addFile adds the file or symlink name (slash path) unless it is gone
// from the work tree.
func (t *tree) addFile(name string) error {
	if _, ok := t.byN[name]; ok {
		return nil // several merge stages of one path
	}
	fi, ok, err := t.present(name)
	if err != nil || !ok {
		return err // !ok: deleted in the work tree
	}
	src := filepath.Join(t.root, filepath.FromSlash(name))
	if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return nil // a directory where a file was tracked, a socket, ...
	}
	if err := t.addParents(name); err != nil {
		return err
	}
	return t.add(name, src, fi)
}

func (t *tree) add(name, src string, fi fs.FileInfo) error {
	e := entry{name: name, src: src, fi: fi}
	if fi.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("reading link %s: %w", src, err)
		}
		e.link = link
	}
	t.byN[name] = e
	return nil
}

func (t *tree) addParents(name string) error {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.byN[dir]; ok {
			return nil
		}
		src := filepath.Join(t.root, filepath.FromSlash(dir))
		fi, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("reading %s: %w", src, err)
		}
		t.byN[dir] = entry{name: dir, src: src, fi: fi}
	}
	return nil
}

// walk adds everything under the directory name ("" for the root).
func (t *tree) walk(name string) error {
	start := filepath.Join(t.root, filepath.FromSlash(name))
	if name != "" {
		if ok, err := t.leadingOK(name + "/x"); err != nil || !ok {
			return err // not a directory of the work tree (any more)
		}
		if err := t.addParents(name + "/x"); err != nil {
			return err
		}
	}
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		rel, _ := filepath.Rel(t.root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		m := fi.Mode()
		if !m.IsRegular() && !m.IsDir() && m&fs.ModeSymlink == 0 {
			return nil // sockets, fifos, devices
		}
		return t.add(filepath.ToSlash(rel), p, fi)
	})
}
