package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
)

func (a *app) vmWorkspaceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workspace",
		Short: "Put a git checkout from this host into a VM",
	}
	cmd.AddCommand(a.workspacePrepareCmd(), a.workspaceExportCmd())
	return cmd
}

// workspaceFlags are the flags prepare and run share.
type workspaceFlags struct {
	mode, branch, from string
}

func (f *workspaceFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", api.WorkspaceShallow, "shallow (HEAD only, plus the work tree as it is), history (the same with the current branch's whole history) or full_copy (the whole directory, .git and submodules included)")
	fl.StringVar(&f.branch, "branch", "", "create this branch in the guest checkout and switch to it")
	fl.StringVar(&f.from, "from", "", "where --branch starts: a branch, tag or commit of this repository (default HEAD)")
}

func (f *workspaceFlags) check() error {
	if f.from != "" && f.branch == "" {
		return errdefs.Invalid("--from names where a new branch starts; pass --branch too")
	}
	if f.mode != api.WorkspaceShallow && f.mode != api.WorkspaceHistory && f.mode != api.WorkspaceFullCopy {
		return errdefs.Invalid("--mode %q must be %s, %s or %s", f.mode, api.WorkspaceShallow, api.WorkspaceHistory, api.WorkspaceFullCopy)
	}
	return nil
}

func (a *app) workspacePrepareCmd() *cobra.Command {
	var wf workspaceFlags
	var guestPath string
	var readonly, asJSON bool
	cmd := &cobra.Command{
		Use:   "prepare VM [PATH]",
		Short: "Copy the git checkout enclosing PATH (default .) into a running VM",
		Long: `Materialise the git repository enclosing PATH in the VM at --guest-path
(default /root/repo).

The default mode, shallow, sends git metadata holding only the HEAD commit
(history of depth 1), the index, and the tracked and untracked non-ignored
files exactly as they are in the work tree: uncommitted edits included,
deleted files left out, so 'git status' in the guest says what it says here.
--mode history does the same with the whole history of the current branch,
for git log and blame in the guest. Repositories with submodules need
--mode full_copy, which copies the whole directory, .git with its history,
submodules and ignored files included.

Running prepare again replaces the guest tree (it does not merge into it).
--readonly makes the tree immutable in the guest, for root too.`,
		Example: `  banger vm workspace prepare dev
  banger vm workspace prepare dev ../other-repo --guest-path /root/other --readonly
  banger vm workspace prepare dev --branch fix/login --from origin/main`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wf.check(); err != nil {
				return err
			}
			path := "."
			if len(args) == 2 {
				path = args[1]
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			ws, err := cl.PrepareWorkspace(cmd.Context(), args[0], api.WorkspacePrepareRequest{
				Path: abs, GuestPath: guestPath, Mode: wf.mode, ReadOnly: readonly, Branch: wf.branch, From: wf.from,
			}, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ws)
			}
			fmt.Fprintln(a.stdout, workspaceSummary(ws))
			return nil
		},
	}
	wf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&guestPath, "guest-path", api.DefaultGuestPath, "guest directory to (re)place the checkout at")
	f.BoolVar(&readonly, "readonly", false, "make the guest tree immutable (root included)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// workspaceSummary is the one line saying what was prepared.
func workspaceSummary(ws api.Workspace) string {
	at := "unborn branch"
	if ws.Head != "" {
		at = shortSHA(ws.Head)
	}
	if ws.Branch != "" {
		at += " on " + ws.Branch
	} else if ws.Head != "" {
		at += " (detached)"
	}
	ro := ""
	if ws.ReadOnly {
		ro = ", read-only"
	}
	return safe(fmt.Sprintf("%s:%s holds %s at %s (%s%s): %d entries, %s in %s",
		ws.VM, ws.GuestPath, ws.RepoPath, at, ws.Mode, ro, ws.Files, bytesize.Format(ws.Bytes), ws.Duration.Round(100*time.Millisecond)))
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
