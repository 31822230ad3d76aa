package guestops

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"banger/api"
	"banger/api/errdefs"
)

// Copies stream tar archives through the daemon between its API client
// and the guest agent's copy_in/copy_out, a chunk at a time: the daemon
// neither buffers a whole file nor looks inside the archive. The host end
// (banger vm cp) archives and extracts; the agent confines what it
// extracts to its target directory, and the CLI does the same with what
// comes out of a guest. A copy in progress counts as use of the VM, like
// an exec bridge.

// CopyOut writes a tar stream of the guest file or directory src to w,
// entries named from src's base name. Errors before the first byte of w
// (no such VM or path) leave w untouched.
func (g *Ops) CopyOut(ctx context.Context, vm, src string, w io.Writer) (api.CopyResult, error) {
	if err := guestPath("copy source", src); err != nil {
		return api.CopyResult{}, err
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.CopyResult{}, err
	}
	g.execOpened(vm, +1)
	defer g.execOpened(vm, -1)
	res, err := cl.CopyOut(ctx, src, w)
	if err != nil {
		return api.CopyResult{}, err
	}
	return api.CopyResult{Entries: res.Entries, Bytes: res.Bytes}, nil
}

// CopyIn extracts the tar stream r under the guest directory dir,
// created when missing; the agent refuses entries that would leave it.
func (g *Ops) CopyIn(ctx context.Context, vm, dir string, r io.Reader) (api.CopyResult, error) {
	if err := guestPath("copy destination", dir); err != nil {
		return api.CopyResult{}, err
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.CopyResult{}, err
	}
	g.execOpened(vm, +1)
	defer g.execOpened(vm, -1)
	res, err := cl.CopyIn(ctx, dir, r)
	if err != nil {
		return api.CopyResult{}, err
	}
	return api.CopyResult{Entries: res.Entries, Bytes: res.Bytes}, nil
}

// statScript prints what is at $1 without following a final symlink to
// a directory: busybox sh and test are enough.
const statScript = `if [ -d "$1" ] && [ ! -L "$1" ]; then echo dir
elif [ -e "$1" ] || [ -L "$1" ]; then echo file
else echo none; fi`

// StatPath says whether a guest path is a directory, something else, or
// nothing, so that 'vm cp' can name what it copies as cp does.
func (g *Ops) StatPath(ctx context.Context, vm, p string) (api.PathStat, error) {
	if err := guestPath("guest path", p); err != nil {
		return api.PathStat{}, err
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.PathStat{}, err
	}
	out, err := cl.Output(ctx, []string{"sh", "-c", statScript, "banger-stat", p}, nil)
	if err != nil {
		return api.PathStat{}, err
	}
	switch kind := strings.TrimSpace(out); kind {
	case api.PathDir, api.PathFile, api.PathNone:
		return api.PathStat{Path: p, Kind: kind}, nil
	}
	return api.PathStat{}, fmt.Errorf("checking %s in vm %s: unexpected answer %q from the guest", p, vm, clipAnswer(out))
}

func guestPath(what, p string) error {
	if p == "" || !path.IsAbs(p) {
		return errdefs.Invalid("%s %q must be an absolute guest path, like /root/file", what, p)
	}
	if strings.ContainsRune(p, 0) {
		return errdefs.Invalid("%s %q contains a NUL byte", what, p)
	}
	return nil
}

func clipAnswer(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
