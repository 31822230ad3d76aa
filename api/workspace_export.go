package api

import "time"

// WorkspaceExportRequest is the body of POST /v1/vms/{name}/workspace/export,
// which brings a guest checkout's work into a host repository as a branch.
// The call streams progress (NDJSON) and ends with a WorkspaceExport.
type WorkspaceExportRequest struct {
	// RepoPath is an absolute host path inside the repository that gets
	// the branch (the one the workspace was prepared from).
	RepoPath string `json:"repo_path"`
	// GuestPath is the guest checkout; DefaultGuestPath when empty.
	GuestPath string `json:"guest_path,omitempty"`
	// Branch is the host branch to create; "banger/<vm>" when empty.
	Branch string `json:"branch,omitempty"`
	// Force replaces an existing branch of that name.
	Force bool `json:"force,omitempty"`
}

// WorkspaceExport says what an export brought to the host.
type WorkspaceExport struct {
	VM        string `json:"vm"`
	GuestPath string `json:"guest_path"`
	RepoPath  string `json:"repo_path"` // host work tree root
	Branch    string `json:"branch"`
	// Commit is where Branch now points; Replaced its previous commit
	// when --force replaced it.
	Commit   string `json:"commit"`
	Replaced string `json:"replaced,omitempty"`
	// Base is the commit the guest's work starts at ("" when the guest
	// checkout has no record of one and its whole history came over).
	Base string `json:"base,omitempty"`
	// Commits counts the guest's commits on top of Base; Uncommitted
	// says Commit is one more, made of the guest's uncommitted and
	// untracked non-ignored changes.
	Commits     int           `json:"commits"`
	Uncommitted bool          `json:"uncommitted"`
	Bytes       int64         `json:"bytes"` // size of the bundle
	Duration    time.Duration `json:"duration"`
}
