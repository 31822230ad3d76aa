package cli

import (
	"strings"
	"testing"

	"banger/api"
)

func TestExportSummary(t *testing.T) {
	base := strings.Repeat("a", 40)
	got := exportSummary(api.WorkspaceExport{
		VM: "dev", GuestPath: "/root/repo\x1b]0;owned\a", RepoPath: "/src/app", Branch: "banger/dev",
		Commit: strings.Repeat("c", 40), Base: base, Commits: 2, Uncommitted: true, Bytes: 2048,
	})
	want := "banger/dev in /src/app now holds 2 commits and the uncommitted changes (as one more commit) from dev:/root/repo\\x1b]0;owned\\x07 since aaaaaaaaaaaa (cccccccccccc, 2.0 KiB)\n" +
		"review: git diff aaaaaaaaaaaa..banger/dev\n" +
		"take it: git merge banger/dev   (or: git cherry-pick aaaaaaaaaaaa..banger/dev)\n"
	if got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
}
