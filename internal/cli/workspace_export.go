package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/internal/bytesize"
)

func (a *app) workspaceExportCmd() *cobra.Command {
	var repo, branch string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "export VM [PATH]",
		Short: "Bring the work in a guest checkout back to this host as a branch",
		Long: `Bring the work in the guest checkout at PATH (default /root/repo) into the
host repository enclosing --repo (default .) as a branch (default banger/VM):
the guest's new commits, plus its uncommitted and untracked non-ignored
changes as one more commit on top.

Nothing changes in the guest (its index, HEAD, refs, stash and files stay as
they are) and nothing changes in this repository's work tree, index or
current branch: git fetches the guest's work into the branch. An existing
branch of that name is refused unless --force. The guest needs git.

Then review and take the work as with any branch:
  git diff main...banger/dev      # what the guest did since it started
  git merge banger/dev            # or: git cherry-pick main..banger/dev`,
		Example: `  banger vm workspace export dev
  banger vm workspace export dev /root/other --repo ../other --branch try/other --force`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			guestPath := api.DefaultGuestPath
			if len(args) == 2 {
				guestPath = args[1]
			}
			abs, err := filepath.Abs(repo)
			if err != nil {
				return err
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			ex, err := cl.ExportWorkspace(cmd.Context(), args[0], api.WorkspaceExportRequest{
				RepoPath: abs, GuestPath: guestPath, Branch: branch, Force: force,
			}, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ex)
			}
			fmt.Fprint(a.stdout, exportSummary(ex))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&repo, "repo", ".", "a path in the host repository that gets the branch")
	f.StringVar(&branch, "branch", "", "the host branch to create (default banger/VM)")
	f.BoolVar(&force, "force", false, "replace the branch when it exists")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// exportSummary says what arrived and how to review it.
func exportSummary(ex api.WorkspaceExport) string {
	var what []string
	if ex.Commits > 0 {
		what = append(what, fmt.Sprintf("%d commit%s", ex.Commits, map[bool]string{true: "s"}[ex.Commits != 1]))
	}
	if ex.Uncommitted {
		what = append(what, "the uncommitted changes (as one more commit)")
	}
	since := ""
	if ex.Base != "" {
		since = " since " + shortSHA(ex.Base)
	}
	replaced := ""
	if ex.Replaced != "" {
		replaced = ", replacing " + shortSHA(ex.Replaced)
	}
	var b strings.Builder
	fmt.Fprintln(&b, safe(fmt.Sprintf("%s in %s now holds %s from %s:%s%s (%s, %s%s)",
		ex.Branch, ex.RepoPath, strings.Join(what, " and "), ex.VM, ex.GuestPath, since, shortSHA(ex.Commit), bytesize.Format(ex.Bytes), replaced)))
	from := ex.Base
	if from == "" {
		from = "HEAD"
	}
	fmt.Fprintln(&b, "review: "+safe(fmt.Sprintf("git diff %s..%s", shortSHA(from), ex.Branch)))
	fmt.Fprintln(&b, "take it: "+safe(fmt.Sprintf("git merge %s   (or: git cherry-pick %s..%s)", ex.Branch, shortSHA(from), ex.Branch)))
	return b.String()
}
