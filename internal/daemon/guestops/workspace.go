package guestops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/bytesize"
	"banger/internal/progress"
	"banger/internal/workspace"
)

// PrepareWorkspace materialises the git checkout at req.Path (a host path)
// in a running VM, replacing whatever was at the guest path: the tree goes
// through the agent's copy_in as one tar stream into a staging directory
// next to the target, then a guest script swaps it in (see
// workspace.FinalizeScript).
func (g *Ops) PrepareWorkspace(ctx context.Context, vm string, req api.WorkspacePrepareRequest, p progress.Func) (api.Workspace, error) {
	t0 := time.Now()
	if err := g.checkPrepare(ctx, &req); err != nil {
		return api.Workspace{}, err
	}
	release, err := g.vms.Hold(vm, "workspace prepare")
	if err != nil {
		return api.Workspace{}, err
	}
	defer release()
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.Workspace{}, err
	}
	p.Step("scan", "reading "+req.Path)
	tools := g.ProbeTools(ctx, cl)
	plan, err := workspace.NewPlan(ctx, workspace.Options{Path: req.Path, Mode: req.Mode, From: req.From, GuestGit: tools.Git})
	if err != nil {
		return api.Workspace{}, err
	}
	defer plan.Close()
	staging := workspace.StagingPath(req.GuestPath)
	p.Step("copy", copyMessage(plan, vm, req.GuestPath))
	// A checkout stream is mostly the git pack, which does not compress.
	wire, err := sendTree(ctx, cl, plan, staging, tools.Untar && !plan.Checkout, p)
	if err == nil {
		p.Step("finalize", "moving the tree into place")
		f := workspace.Finalize{Staging: staging, Target: req.GuestPath, ReadOnly: req.ReadOnly, Branch: req.Branch, From: plan.From, Links: plan.Links}
		if _, ferr := cl.Output(ctx, f.Argv(), nil); ferr != nil {
			err = fmt.Errorf("putting the workspace in place at %s: %w", req.GuestPath, ferr)
		}
	}
	if err != nil {
		g.removeGuestDir(ctx, cl, staging)
		return api.Workspace{}, err
	}
	ws := api.Workspace{
		VM: vm, RepoPath: plan.Repo.Root, GuestPath: req.GuestPath, Mode: plan.Mode, ReadOnly: req.ReadOnly,
		Head: plan.Repo.Head, Branch: plan.Repo.Branch, Files: plan.Files, Bytes: plan.Bytes,
		Wire: wire, Duration: time.Since(t0),
	}
	if req.Branch != "" {
		ws.Head, ws.Branch = plan.From, req.Branch
	}
	g.events.Event(ctx, "info", "vm/"+vm, fmt.Sprintf("workspace %s in vm %s prepared from %s (%s, %d entries, %s)",
		req.GuestPath, vm, plan.Repo.Root, plan.Mode, ws.Files, ws.Duration.Round(time.Millisecond)))
	g.log.Debug("workspace stream", "vm", vm, "entries", plan.Entries, "bytes", plan.Bytes, "wire", wire, "checkout", plan.Checkout)
	return ws, nil
}

func copyMessage(plan *workspace.Plan, vm, dst string) string {
	switch {
	case plan.Checkout:
		return fmt.Sprintf("sending %d changed files (%s) and the git objects to %s:%s, where git checks out the other %d",
			plan.Files-plan.CheckedOut, bytesize.Format(plan.Bytes), vm, dst, plan.CheckedOut)
	case plan.Mode != workspace.ModeFullCopy:
		return fmt.Sprintf("sending %d files (%s) and the git metadata to %s:%s", plan.Files, bytesize.Format(plan.Bytes), vm, dst)
	}
	return fmt.Sprintf("sending %d files (%s) to %s:%s", plan.Files, bytesize.Format(plan.Bytes), vm, dst)
}

func (g *Ops) checkPrepare(ctx context.Context, req *api.WorkspacePrepareRequest) error {
	if req.GuestPath == "" {
		req.GuestPath = api.DefaultGuestPath
	}
	if !filepath.IsAbs(req.Path) {
		return errdefs.Invalid("workspace path %q must be absolute", req.Path)
	}
	if err := workspace.CheckGuestPath(req.GuestPath); err != nil {
		return err
	}
	if req.From != "" && req.Branch == "" {
		return errdefs.Invalid("--from names where a new branch starts; pass --branch too")
	}
	if req.Branch != "" {
		if req.From == "" {
			req.From = "HEAD"
		}
		return workspace.CheckBranch(ctx, req.Branch)
	}
	return nil
}

// untarScript unpacks a gzip-compressed tar stream from stdin into $1
// with the guest's own tar.
const untarScript = `mkdir -p "$1" && exec tar -x -z -f - -C "$1"`

// sendTree streams the plan into the guest directory dst and returns the
// stream's size on the wire. With compress (the guest has tar and gzip),
// the stream is gzip-compressed and unpacked by them through exec;
// otherwise it goes uncompressed through the agent's copy_in. Under
// software emulation the first takes about half the time: the guest's CPU
// is the bottleneck, and the agent's per-file work in copy_in costs more
// than tar's (see docs/workspaces.md).
func sendTree(ctx context.Context, cl *agentproto.Client, plan *workspace.Plan, dst string, compress bool, p progress.Func) (int64, error) {
	total := plan.Bytes
	if plan.Mode != workspace.ModeFullCopy {
		total = 0 // the git metadata is still being built: its size is unknown
	}
	counter := progress.NewCounter(p, "copy", "files", total)
	pr, pw := io.Pipe()
	wire := &countWriter{w: pw}
	wrote := make(chan error, 1)
	go func() { wrote <- writeStream(wire, pw, plan, compress, counter) }()
	var err error
	if compress {
		stderr := agentproto.LimitedBuffer{Max: agentproto.OutputMax}
		var st agentproto.ExitStatus
		st, err = cl.Run(ctx, agentproto.ExecRequest{Argv: []string{"sh", "-c", untarScript, "banger-untar", dst}}, agentproto.Stdio{Stdin: pr, Stderr: &stderr})
		if err == nil && !st.Success() {
			err = fmt.Errorf("tar in the guest: %s: %s", st, strings.TrimSpace(stderr.String()))
		}
	} else {
		_, err = cl.CopyIn(ctx, dst, pr)
	}
	pr.CloseWithError(io.ErrClosedPipe) // a writer still busy gives up
	if werr := <-wrote; werr != nil && (err == nil || !errors.Is(werr, io.ErrClosedPipe)) {
		err = werr // the stream's own failure says more than its consequence
	}
	if err != nil {
		return wire.n, fmt.Errorf("sending the workspace: %w", err)
	}
	counter.Done()
	return wire.n, nil
}

// writeStream writes the plan's tar stream to w (gzip-compressed when
// asked) in large writes, then closes pw with the outcome.
func writeStream(w io.Writer, pw *io.PipeWriter, plan *workspace.Plan, compress bool, counter *progress.Counter) error {
	var zw *gzip.Writer
	if compress {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		w = zw
	}
	bw := bufio.NewWriterSize(w, 1<<20) // the agent sends each write as a frame
	err := plan.WriteTar(bw, counter.Add)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	pw.CloseWithError(err)
	return err
}

// Tools is what a workspace copy can use in the guest.
type Tools struct {
	Untar bool // tar and gzip: a compressed stream unpacked by them
	Git   bool // git: shallow copies send only what differs from the index
}

// probeTools finds out which tools the guest has.
func probeTools(ctx context.Context, cl *agentproto.Client) Tools {
	out, _ := cl.Output(ctx, []string{"sh", "-c", `for c in tar gzip git; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done; exit 0`}, nil)
	has := map[string]bool{}
	for _, f := range strings.Fields(out) {
		has[f] = true
	}
	return Tools{Untar: has["tar"] && has["gzip"], Git: has["git"]}
}

// removeGuestDir deletes a staging directory after a failure, even when
// the request was cancelled.
func (g *Ops) removeGuestDir(ctx context.Context, cl *agentproto.Client, dir string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if _, err := cl.Output(cctx, []string{"rm", "-rf", "--", dir}, nil); err != nil {
		g.log.Warn("removing workspace staging directory", "dir", dir, "err", err)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
