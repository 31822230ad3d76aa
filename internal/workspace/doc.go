// Package workspace materialises a git checkout from the host in a guest.
//
// It works on the host side only: it reads the repository with the git
// command line and produces a tar stream plus a small shell script for the
// guest; the daemon sends the stream with the agent's copy_in and runs the
// script with exec. Two modes:
//
//   - shallow (the default): git metadata holding only the HEAD commit
//     (history depth 1, made by fetching HEAD from the host repository into
//     a scratch repository), the host's index, and the tracked and
//     untracked non-ignored files of the work tree exactly as they are:
//     uncommitted edits included, deleted files absent. 'git status' in
//     the guest then says what it says on the host. Repositories with
//     submodules are refused: their metadata cannot be made shallow here.
//   - history: shallow mode with the whole history of HEAD (and of the
//     --from commit) rather than depth 1, for log and blame in the guest.
//   - full_copy: the repository directory as it is, .git with its whole
//     history, submodules and ignored files included.
//
// Each mode records the commit the guest starts at (BaseMarker). The way
// back is ExportScript: it bundles what the guest added on top of that
// commit, uncommitted work included, without changing the guest's
// checkout; Repo.ImportBundle fetches it into the host repository as a
// branch.
//
// The tree lands in a fresh directory next to the target, which then
// replaces the target (see FinalizeScript), so preparing twice replaces
// the first tree rather than merging into it.
//
//	plan, err := workspace.NewPlan(ctx, workspace.Options{Path: "/home/me/src/app"})
//	if err != nil { ... }
//	defer plan.Close()
//	err = plan.WriteTar(w, nil) // into agent.Client.CopyIn
package workspace
