package imagepull

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	"banger/api/errdefs"
)

// node is a path in the flattened tree. Directories have kids; every
// other node points at an inode, which hardlinked paths share.
type node struct {
	name   string
	parent *node
	kids   map[string]*node // directories only
	hdr    *tar.Header      // directory attributes; nil for an implicit directory
	ino    *inode           // non-directories
	layer  int              // the layer that last wrote this path
}

// inode is the content and attributes behind one or more paths.
type inode struct {
	hdr   *tar.Header
	layer int // source layer, len(layers) for extra files
	seq   int // position within the layer, to read spools in order
	off   int64
	extra *ExtraFile
}

func (n *node) isDir() bool { return n.kids != nil }

func (n *node) isSymlink() bool { return n.ino != nil && n.ino.hdr.Typeflag == tar.TypeSymlink }

func (n *node) path() string {
	if n.parent == nil {
		return ""
	}
	if p := n.parent.path(); p != "" {
		return p + "/" + n.name
	}
	return n.name
}

// tree is the image root being replayed, layer by layer.
type tree struct {
	root *node
}

func newTree() *tree { return &tree{root: &node{kids: map[string]*node{}}} }

const maxSymlinkHops = 40 // as Linux's ELOOP

// dir walks to the directory p (cleaned, relative), following symlinks
// met on the way inside the tree only: an absolute target starts again
// at the image root and ".." stops at it, as if chrooted. With create,
// missing directories are made (implicit, default attributes, layer).
// It returns nil, nil when !create and the directory does not exist.
func (t *tree) dir(p string, create bool, layer int) (*node, error) {
	cur := t.root
	comps := split(p)
	for hops := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		kid := cur.kids[c]
		switch {
		case kid == nil:
			if !create {
				return nil, nil
			}
			kid = &node{name: c, parent: cur, kids: map[string]*node{}, layer: layer}
			cur.kids[c] = kid
		case kid.isSymlink():
			if hops++; hops > maxSymlinkHops {
				return nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target := kid.ino.hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = cur.path() + "/" + target
			}
			comps = append(split(path.Clean("/"+target)), comps...)
			cur = t.root
			continue
		case !kid.isDir():
			return nil, fmt.Errorf("%s: %s is not a directory", p, kid.path())
		}
		cur = kid
	}
	return cur, nil
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}

// lookup finds the node at p without following a final symlink.
func (t *tree) lookup(p string) (*node, error) {
	if p == "" {
		return t.root, nil
	}
	d, err := t.dir(path.Dir(p), false, 0)
	if err != nil || d == nil {
		return nil, err
	}
	return d.kids[path.Base(p)], nil
}

// apply replays one layer's entries.
func (t *tree) apply(layer int, es []entry, digest string) error {
	for seq, e := range es {
		var err error
		switch e.kind {
		case entryOpaque:
			err = t.opaque(e.name, layer)
		case entryWhiteout:
			err = t.whiteout(e.name, layer)
		default:
			err = t.add(e, layer, seq)
		}
		if err != nil {
			return errdefs.Invalid("layer %s: %w", digest, err)
		}
	}
	return nil
}

// opaque hides everything lower layers put in directory p.
func (t *tree) opaque(p string, layer int) error {
	d, err := t.dir(p, true, layer)
	if err != nil {
		return err
	}
	for name, kid := range d.kids {
		if !prune(kid, layer) {
			delete(d.kids, name)
		}
	}
	return nil
}

// whiteout hides path p of lower layers; a whiteout for something that
// does not exist is a no-op, as in overlayfs.
func (t *tree) whiteout(p string, layer int) error {
	d, err := t.dir(path.Dir(p), false, layer)
	if err != nil || d == nil {
		return err
	}
	base := path.Base(p)
	if kid := d.kids[base]; kid != nil && !prune(kid, layer) {
		delete(d.kids, base)
	}
	return nil
}

// prune drops what lower layers put under n and reports whether anything
// of n, written by this layer itself, survives.
func prune(n *node, layer int) bool {
	for name, kid := range n.kids {
		if !prune(kid, layer) {
			delete(n.kids, name)
		}
	}
	return n.layer == layer || len(n.kids) > 0
}

// add writes one entry, replacing what was at its path (a directory over
// a directory only updates attributes, as tar extraction does).
func (t *tree) add(e entry, layer, seq int) error {
	if e.name == "" {
		t.root.hdr, t.root.layer = e.hdr, layer
		return nil
	}
	d, err := t.dir(path.Dir(e.name), true, layer)
	if err != nil {
		return err
	}
	base := path.Base(e.name)
	if d == t.root && base == "lost+found" && e.hdr.Typeflag != tar.TypeDir {
		return nil // ext4 needs its own lost+found directory there
	}
	old := d.kids[base]
	n := &node{name: base, parent: d, layer: layer}
	switch e.hdr.Typeflag {
	case tar.TypeDir:
		if old != nil && old.isDir() {
			old.hdr, old.layer = e.hdr, layer
			return nil
		}
		n.kids, n.hdr = map[string]*node{}, e.hdr
	case tar.TypeLink:
		target, err := t.lookup(e.link)
		if err != nil {
			return fmt.Errorf("hardlink %s -> %s: %w", e.name, e.link, err)
		}
		if target == nil || target.isDir() {
			return fmt.Errorf("hardlink %s -> %s: the target is missing or a directory", e.name, e.link)
		}
		if target == old {
			return nil
		}
		n.ino = target.ino
	default:
		if e.hdr.Typeflag == tar.TypeSymlink {
			e.hdr.Linkname = confineLink(d.path(), e.hdr.Linkname)
		}
		n.ino = &inode{hdr: e.hdr, layer: layer, seq: seq, off: e.off}
	}
	d.kids[base] = n
	return nil
}

// confineLink rewrites a relative symlink target that climbs above the
// root from directory dir into the path it reaches inside the root: the
// guest resolves both the same way, but the rewritten one cannot point
// outside the image when the tree is read anywhere else.
func confineLink(dir, target string) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	if c := path.Clean(path.Join(dir, target)); c != ".." && !strings.HasPrefix(c, "../") {
		return target
	}
	inside := path.Clean("/" + dir + "/" + target)[1:]
	up := strings.Repeat("../", len(split(dir)))
	if inside == "" {
		if up == "" {
			return "."
		}
		return strings.TrimSuffix(up, "/")
	}
	return up + inside
}
