package guestops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/bytesize"
	"banger/internal/progress"
	"banger/internal/workspace"
)

// ExportMax bounds the bundle a guest may send back: it lands in a host
// temporary file, and the guest is not trusted to keep it small.
const ExportMax = 8 << 30

// ExportWorkspace brings the work in a guest checkout (its new commits,
// plus its uncommitted and untracked non-ignored changes as one more
// commit) into the host repository at req.RepoPath as a branch. git does
// the transfer: the guest makes a bundle of what it added to the commit
// the workspace started at (see workspace.ExportScript), the host fetches
// it and points the branch at its tip. Neither the guest's checkout nor the
// host's work tree, index or current branch change.
func (g *Ops) ExportWorkspace(ctx context.Context, vm string, req api.WorkspaceExportRequest, p progress.Func) (api.WorkspaceExport, error) {
	t0 := time.Now()
	if req.GuestPath == "" {
		req.GuestPath = api.DefaultGuestPath
	}
	if req.Branch == "" {
		req.Branch = "banger/" + vm
	}
	if !path.IsAbs(req.GuestPath) || path.Clean(req.GuestPath) != req.GuestPath || strings.ContainsAny(req.GuestPath, "\x00\n") {
		return api.WorkspaceExport{}, errdefs.Invalid("guest path %q must be absolute and clean, like /root/repo", req.GuestPath)
	}
	if !path.IsAbs(req.RepoPath) {
		return api.WorkspaceExport{}, errdefs.Invalid("repository path %q must be absolute", req.RepoPath)
	}
	repo, err := workspace.Open(ctx, req.RepoPath)
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	old, err := repo.CheckExportBranch(ctx, req.Branch, req.Force)
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	release, err := g.vms.Hold(vm, "workspace export")
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	defer release()
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	p.Step("snapshot", fmt.Sprintf("bundling the work in %s:%s", vm, req.GuestPath))
	name, email := repo.Identity(ctx)
	snap, err := snapshot(ctx, cl, vm, req.GuestPath, name, email)
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	defer g.removeGuestDir(ctx, cl, snap.Dir)
	p.Step("copy", "copying the bundle to this host")
	bundle, size, err := fetchBundle(ctx, cl, snap.Bundle, p)
	if bundle != "" {
		defer os.Remove(bundle)
	}
	if err != nil {
		return api.WorkspaceExport{}, err
	}
	p.Step("import", fmt.Sprintf("fetching into %s as %s", repo.Root, req.Branch))
	if err := repo.ImportBundle(ctx, bundle, snap, req.Branch, old, vm); err != nil {
		return api.WorkspaceExport{}, err
	}
	ex := api.WorkspaceExport{
		VM: vm, GuestPath: req.GuestPath, RepoPath: repo.Root, Branch: req.Branch, Commit: snap.Tip, Replaced: old,
		Base: snap.Base, Commits: snap.Commits, Uncommitted: snap.Uncommitted(), Bytes: size, Duration: time.Since(t0),
	}
	g.events.Event(ctx, "info", "vm/"+vm, fmt.Sprintf("workspace %s in vm %s exported to %s as branch %s (%d commits%s)",
		req.GuestPath, vm, repo.Root, req.Branch, ex.Commits, map[bool]string{true: " and uncommitted changes"}[ex.Uncommitted]))
	return ex, nil
}

// snapshot runs workspace.ExportScript in the guest and turns its
// answers (no git, not a checkout, rewritten history, nothing new) into
// errors of the right kind.
func snapshot(ctx context.Context, cl *agentproto.Client, vm, guestPath, name, email string) (workspace.Snapshot, error) {
	stdout, stderr := agentproto.LimitedBuffer{Max: 64 << 10}, agentproto.LimitedBuffer{Max: 64 << 10}
	st, err := cl.Run(ctx, agentproto.ExecRequest{Argv: workspace.ExportArgv(guestPath, name, email)}, agentproto.Stdio{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return workspace.Snapshot{}, fmt.Errorf("exporting %s:%s: %w", vm, guestPath, err)
	}
	msg := strings.TrimSpace(stderr.String())
	switch {
	case st.Success():
	case st.Code == workspace.ExportNoGit:
		return workspace.Snapshot{}, errdefs.Unsupported("vm %s: %s", vm, msg)
	case st.Code == workspace.ExportNoRepo:
		return workspace.Snapshot{}, errdefs.NotFound("vm %s: %s; pass the guest path of the checkout (default %s)", vm, msg, api.DefaultGuestPath)
	case st.Code == workspace.ExportRewritten:
		return workspace.Snapshot{}, errdefs.Conflict("vm %s: %s; nothing was exported. Commit the work on a branch that keeps that history, or copy files out instead", vm, msg)
	case st.Code == workspace.ExportNothing:
		return workspace.Snapshot{}, errdefs.Conflict("vm %s: %s", vm, msg)
	default:
		return workspace.Snapshot{}, fmt.Errorf("exporting %s:%s: %s in the guest: %s", vm, guestPath, st, msg)
	}
	return workspace.ParseSnapshot(stdout.String())
}

// fetchBundle copies the guest's bundle into a host temporary file, at
// most ExportMax bytes; the caller removes the file.
func fetchBundle(ctx context.Context, cl *agentproto.Client, src string, p progress.Func) (string, int64, error) {
	f, err := os.CreateTemp("", "banger-export-*.bundle")
	if err != nil {
		return "", 0, fmt.Errorf("creating a file for the bundle: %w", err)
	}
	defer f.Close()
	counter := progress.NewCounter(p, "copy", "bundle", 0)
	lw := &limitWriter{w: counter.Writer(f), max: ExportMax}
	stderr := agentproto.LimitedBuffer{Max: 64 << 10}
	st, err := cl.Run(ctx, agentproto.ExecRequest{Argv: []string{"cat", "--", src}}, agentproto.Stdio{Stdout: lw, Stderr: &stderr})
	if err == nil && !st.Success() {
		err = fmt.Errorf("%s: %s", st, strings.TrimSpace(stderr.String()))
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		if errors.Is(err, errTooLarge) || lw.n > lw.max {
			err = errdefs.Invalid("the guest's bundle is larger than %s; export fewer changes at once", bytesize.Format(ExportMax))
		}
		return f.Name(), lw.n, fmt.Errorf("copying the bundle out of the guest: %w", err)
	}
	counter.Done()
	return f.Name(), lw.n, nil
}

var errTooLarge = errors.New("too large")

type limitWriter struct {
	w      io.Writer
	n, max int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if l.n+int64(len(b)) > l.max {
		l.n += int64(len(b))
		return 0, errTooLarge
	}
	n, err := l.w.Write(b)
	l.n += int64(n)
	return n, err
}
