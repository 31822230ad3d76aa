package workspace

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"banger/api/errdefs"
)

// Modes.
const (
	ModeShallow  = "shallow"
	ModeHistory  = "history"
	ModeFullCopy = "full_copy"
)

// Options say what to prepare. Path is required.
type Options struct {
	// Path is a host path inside the git work tree.
	Path string
	// Mode is ModeShallow (also when empty), ModeHistory or ModeFullCopy.
	Mode string
	// From, when set, is a commit-ish the guest will create a branch from;
	// shallow metadata then carries that commit too.
	From string
	// GuestGit says the guest has git. Shallow mode then sends only what
	// differs from the index, and the guest checks the index out (see
	// Plan.Checkout).
	GuestGit bool
}

// Plan is a prepared workspace: what the tar stream will hold.
type Plan struct {
	Repo Repo
	Mode string
	// From is the commit ID Options.From named ("" without).
	From string
	// Entries and Bytes count what WriteTar sends: entries, and the
	// content of regular files. Before WriteTar they count the work tree
	// only; in shallow mode WriteTar adds the git metadata, which is built
	// while the work tree is being sent.
	Entries int
	Bytes   int64
	// Files counts the files and symlinks of the work tree the guest ends
	// up with, .git aside; CheckedOut of them are written by git in the
	// guest rather than sent (see Checkout).
	Files      int
	CheckedOut int
	// Links are symlinks that point outside the tree; they are not in the
	// stream, FinalizeScript makes them.
	Links []Link
	// Checkout is set when the stream holds only the files that differ
	// from the index (and the untracked ones): FinalizeScript then checks
	// the index out with git in the guest, which writes the rest from the
	// shallow pack and records their stat data in the index. It needs git
	// in the guest, and a repository whose checkout gives the host's bytes
	// (no filters or end-of-line conversions).
	Checkout bool

	entries  []entry
	checkout []string // Checkout: the index paths the guest writes
	scratch  string
	meta     chan metaResult // shallow mode: the git directory, once built
	metaErr  error
	gitDir   string
}

type metaResult struct {
	gitDir string
	err    error
}

// NewPlan reads the repository and, in shallow mode, builds its shallow
// git metadata in a scratch directory; Close removes it.
func NewPlan(ctx context.Context, opts Options) (*Plan, error) {
	mode := opts.Mode
	if mode == "" {
		mode = ModeShallow
	}
	if mode != ModeShallow && mode != ModeHistory && mode != ModeFullCopy {
		return nil, errdefs.Invalid("workspace mode %q is not one of %s, %s, %s", opts.Mode, ModeShallow, ModeHistory, ModeFullCopy)
	}
	r, err := Open(ctx, opts.Path)
	if err != nil {
		return nil, err
	}
	p := &Plan{Repo: r, Mode: mode}
	if opts.From != "" {
		if p.From, err = r.ResolveCommit(ctx, opts.From); err != nil {
			return nil, err
		}
	}
	var entries []entry
	if mode == ModeFullCopy {
		entries, err = p.fullCopy()
	} else {
		entries, err = p.shallow(ctx, opts.GuestGit)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.entries, p.Links = splitLinks(entries)
	p.count(p.entries)
	p.CheckedOut = len(p.checkout)
	p.Files = len(p.Links) + p.CheckedOut
	for _, e := range p.entries {
		if !e.fi.IsDir() && !strings.HasPrefix(e.name, ".git/") {
			p.Files++
		}
	}
	return p, nil
}

func (p *Plan) count(entries []entry) {
	p.Entries += len(entries)
	for _, e := range entries {
		if e.fi.Mode().IsRegular() {
			p.Bytes += e.fi.Size()
		}
	}
}

func (p *Plan) fullCopy() ([]entry, error) {
	fi, err := os.Lstat(filepath.Join(p.Repo.Root, ".git"))
	if err == nil && !fi.IsDir() {
		return nil, errdefs.Invalid("%s is a linked worktree or a submodule checkout (its .git is a file pointing elsewhere), which full_copy cannot carry; use --mode %s, or copy the main checkout", p.Repo.Root, ModeShallow)
	}
	entries, err := allEntries(p.Repo)
	// The guest's record of its base is written afresh (see WriteTar).
	return slices.DeleteFunc(entries, func(e entry) bool { return e.name == ".git/"+BaseMarker }), err
}

func (p *Plan) shallow(ctx context.Context, guestGit bool) ([]entry, error) {
	subs, err := p.Repo.HasSubmodules(ctx)
	if err != nil {
		return nil, err
	}
	if subs {
		return nil, errdefs.Invalid("%s uses git submodules, which %s mode cannot carry; use --mode %s", p.Repo.Root, p.Mode, ModeFullCopy)
	}
	p.scratch, err = os.MkdirTemp("", "banger-workspace-")
	if err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	var extra []string
	if p.From != "" {
		extra = append(extra, p.From)
	}
	// The metadata (a fetch, which packs HEAD's objects) is built while the
	// work tree goes out; the stream carries .git last.
	p.meta = make(chan metaResult, 1)
	go func() {
		gitDir, err := shallowMeta(ctx, p.Repo, p.scratch, p.Mode == ModeShallow, extra...)
		if err != nil {
			err = fmt.Errorf("building %s git metadata for %s: %w", p.Mode, p.Repo.Root, err)
		}
		p.meta <- metaResult{gitDir, err}
	}()
	if guestGit {
		index, err := p.Repo.index(ctx)
		if err != nil {
			return nil, err
		}
		exact, err := checkoutExact(ctx, p.Repo, index)
		if err != nil {
			return nil, err
		}
		if exact {
			entries, deleted, err := changedEntries(ctx, p.Repo)
			if err != nil {
				return nil, err
			}
			p.Checkout = true
			p.checkout = checkoutList(index, entries, deleted)
			return entries, nil
		}
	}
	return overlayEntries(ctx, p.Repo)
}

// waitMeta returns the shallow git directory once it is built.
func (p *Plan) waitMeta() (string, error) {
	if p.meta != nil {
		r := <-p.meta
		p.meta = nil
		p.gitDir, p.metaErr = r.gitDir, r.err
	}
	return p.gitDir, p.metaErr
}

// WriteTar writes the workspace as a tar stream to w: the work tree, then
// in shallow mode the git metadata. onData, when set, receives file
// content byte counts as they are sent.
func (p *Plan) WriteTar(w io.Writer, onData func(int64)) error {
	tw := newTarWriter(w, onData)
	if err := tw.write(p.entries); err != nil {
		return err
	}
	if p.Mode != ModeFullCopy {
		gitDir, err := p.waitMeta()
		if err != nil {
			return err
		}
		meta, err := dirEntries(gitDir, ".git")
		if err != nil {
			return err
		}
		if err := tw.write(meta); err != nil {
			return err
		}
		p.count(meta)
		if p.Checkout {
			var list strings.Builder
			for _, name := range p.checkout {
				list.WriteString(name + "\x00")
			}
			if err := tw.writeFile(".git/"+CheckoutMarker, []byte(list.String())); err != nil {
				return err
			}
			p.Entries++
		}
	}
	if base := p.base(); base != "" {
		if err := tw.writeFile(".git/"+BaseMarker, []byte(base+"\n")); err != nil {
			return err
		}
		p.Entries++
	}
	return tw.close()
}

// base is the commit the guest's checkout starts at.
func (p *Plan) base() string {
	if p.From != "" {
		return p.From
	}
	return p.Repo.Head
}

// Close removes the scratch directory (after the metadata build ended).
func (p *Plan) Close() error {
	p.waitMeta()
	if p.scratch == "" {
		return nil
	}
	return os.RemoveAll(p.scratch)
}
