package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
	"banger/internal/progress"
	"banger/internal/tarcopy"
)

func (a *app) vmCpCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files and directories between the host and a guest, through its agent",
		Long: `Copy a file or directory between the host and a VM; one side is VM:PATH
(a relative guest PATH is taken from /root). It works like cp -a: modes
and modification times are kept, symlinks are copied as symlinks, and
copying into an existing directory puts SRC inside it while a new DST
name gets SRC's content. '-' as SRC reads a tar archive from stdin and
extracts it into the guest directory DST; '-' as DST writes a tar archive
of the guest's SRC to stdout.

Everything that comes out of a guest is treated as hostile: entries are
confined to DST, and an absolute or '..' name, a symlink pointing out of
DST, a device node or FIFO stops the copy with an error (set-user-ID and
set-group-ID bits are dropped). The same holds inside the guest for a
copy in. A large copy shows its progress when stderr is a terminal.`,
		Example: `  banger vm cp ./src dev:/root/src
  banger vm cp dev:/root/repo/dist ./dist
  banger vm cp dev:/var/log/app.log .
  tar -C build -cf - . | banger vm cp - dev:/srv/www
  banger vm cp dev:/root/repo - | tar -tvf -`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseCopyArg(args[0])
			if err != nil {
				return err
			}
			dst, err := parseCopyArg(args[1])
			if err != nil {
				return err
			}
			switch {
			case src.vm != "" && dst.vm != "":
				return errdefs.Invalid("copying between two VMs is not supported; copy to the host first")
			case src.vm == "" && dst.vm == "":
				return errdefs.Invalid("one of SRC and DST must be VM:PATH, like dev:/root/file")
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			c := copier{a: a, cl: cl, quiet: quiet}
			if dst.vm != "" {
				return c.in(cmd.Context(), src.path, dst)
			}
			return c.out(cmd.Context(), src, dst.path)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "show no progress")
	return cmd
}

// copyArg is one side of a copy: a host path (vm empty), "-", or a guest
// path.
type copyArg struct {
	vm, path string
	dirSlash bool // written with a trailing slash: must be a directory
}

// parseCopyArg reads VM:PATH; anything with a slash before its first
// colon, or no colon, is a host path (write ./a:b for a host file a:b).
func parseCopyArg(s string) (copyArg, error) {
	name, p, ok := strings.Cut(s, ":")
	if !ok || name == "" || strings.Contains(name, "/") {
		if s == "" {
			return copyArg{}, errdefs.Invalid("an empty path cannot be copied")
		}
		return copyArg{path: s, dirSlash: strings.HasSuffix(s, "/")}, nil
	}
	if p == "" {
		return copyArg{}, errdefs.Invalid("%q has no guest path after the colon; write %s:/root/file", s, name)
	}
	arg := copyArg{vm: name, dirSlash: strings.HasSuffix(p, "/")}
	if !path.IsAbs(p) {
		p = path.Join("/root", p)
	}
	arg.path = path.Clean(p)
	return arg, nil
}

type copier struct {
	a     *app
	cl    *client.Client
	quiet bool
}

// progress returns a counter drawn on stderr when it is a terminal, and
// the function that finishes it.
func (c copier) progress(item string, total int64) (*progress.Counter, func()) {
	if c.quiet || !isTTY(c.a.stderr) {
		return nil, func() {}
	}
	pv := newProgressView(c.a.stderr)
	ctr := progress.NewCounter(pv.Event, "copy", item, total)
	return ctr, func() { ctr.Done(); pv.Close() }
}

// in copies the host path src (or a tar on stdin) into the guest.
func (c copier) in(ctx context.Context, src string, dst copyArg) error {
	if src == "-" {
		_, err := c.cl.CopyIn(ctx, dst.vm, dst.path, os.Stdin)
		return err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	st, err := c.cl.StatPath(ctx, dst.vm, dst.path)
	if err != nil {
		return err
	}
	// Where the archive goes and what its top entry is called, as cp.
	dir, name := dst.path, filepath.Base(filepath.Clean(src))
	switch {
	case st.Kind == api.PathDir:
	case dst.dirSlash && st.Kind == api.PathNone:
	case dst.dirSlash:
		return errdefs.Invalid("%s:%s is not a directory in the guest", dst.vm, dst.path)
	case st.Kind == api.PathFile && fi.IsDir():
		return errdefs.Invalid("cannot copy directory %s onto file %s:%s", src, dst.vm, dst.path)
	default: // a new name, or a file to replace
		dir, name = path.Dir(dst.path), path.Base(dst.path)
	}
	var total int64
	if !c.quiet && isTTY(c.a.stderr) {
		total = treeSize(src)
	}
	ctr, done := c.progress(src, total)
	defer done()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := tarcopy.Write(src, name, pw, ctr.Add)
		pw.CloseWithError(err)
	})
	_, err = c.cl.CopyIn(ctx, dst.vm, dir, pr)
	pr.CloseWithError(errors.New("copy ended")) // stop the writer if the daemon gave up first
	wg.Wait()
	return err
}

// treeSize adds up the sizes of the regular files under p.
func treeSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// out copies the guest path src to the host path dst (or a tar on
// stdout), extracting it with every entry confined to dst.
func (c copier) out(ctx context.Context, src copyArg, dst string) error {
	stream, err := c.cl.CopyOut(ctx, src.vm, src.path)
	if err != nil {
		return err
	}
	defer stream.Close()
	if dst == "-" {
		if _, err := io.Copy(c.a.stdout, stream); err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
		_, err := stream.Finish()
		return err
	}
	root, rename, err := outTarget(src, dst)
	if err != nil {
		return err
	}
	defer root.Close()
	ctr, done := c.progress(src.vm+":"+src.path, 0)
	defer done()
	_, xerr := tarcopy.Extract(root, stream, tarcopy.Options{Rename: rename, OnData: ctr.Add})
	if xerr != nil {
		return fmt.Errorf("copying %s:%s to %s: %w", src.vm, src.path, dst, xerr)
	}
	_, err = stream.Finish()
	return err
}

// outTarget opens the directory a copy out extracts into and says how
// the guest's entry names (all under base(src)) map into it: inside an
// existing directory dst they keep their names; otherwise base(src)
// becomes dst. Every entry lands in dst or is dst.
func outTarget(src copyArg, dst string) (*os.Root, func(string) (string, error), error) {
	srcBase := path.Base(src.path)
	if srcBase == "/" {
		srcBase = ""
	}
	fi, err := os.Stat(dst)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	dir, top := dst, srcBase
	switch {
	case exists && fi.IsDir():
	case srcBase == "" || (!exists && strings.HasSuffix(dst, "/")):
		// The guest's / (entries have no common top), or a new directory.
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, nil, fmt.Errorf("creating %s: %w", dst, err)
		}
	default:
		dir, top = filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst))
		if pfi, err := os.Stat(dir); err != nil || !pfi.IsDir() {
			return nil, nil, errdefs.Invalid("%s does not exist or is not a directory; create it first", dir)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	rename := func(name string) (string, error) {
		if srcBase == "" {
			return name, nil
		}
		first, rest, _ := strings.Cut(name, "/")
		if first != srcBase {
			return "", errdefs.Invalid("refusing tar entry %q: not under %q, the path asked for", name, srcBase)
		}
		return path.Join(top, rest), nil
	}
	return root, rename, nil
}
