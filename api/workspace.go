package api

import "time"

// Workspace modes.
const (
	// WorkspaceShallow sends git metadata with a history of depth 1 plus
	// the tracked and untracked non-ignored files of the work tree as they
	// are on the host. Repositories with submodules are refused.
	WorkspaceShallow = "shallow"
	// WorkspaceHistory is shallow mode with the whole history of the
	// current branch (and of --from), for git log and blame in the guest.
	WorkspaceHistory = "history"
	// WorkspaceFullCopy sends the whole repository directory: .git with
	// its full history, submodules, ignored files.
	WorkspaceFullCopy = "full_copy"
)

// DefaultGuestPath is where workspaces land without --guest-path.
const DefaultGuestPath = "/root/repo"

// WorkspacePrepareRequest is the body of POST /v1/vms/{name}/workspace,
// which materialises a host git checkout in a running VM. The call streams
// progress (NDJSON) and ends with a Workspace.
type WorkspacePrepareRequest struct {
	// Path is an absolute host path inside the git repository.
	Path string `json:"path"`
	// GuestPath is the absolute guest directory; DefaultGuestPath when
	// empty. An existing directory there is replaced.
	GuestPath string `json:"guest_path,omitempty"`
	// Mode is WorkspaceShallow (default), WorkspaceHistory or
	// WorkspaceFullCopy.
	Mode string `json:"mode,omitempty"`
	// ReadOnly makes the tree immutable in the guest, for root too.
	ReadOnly bool `json:"readonly,omitempty"`
	// Branch, when set, is created from From (default HEAD) and checked
	// out in the guest.
	Branch string `json:"branch,omitempty"`
	From   string `json:"from,omitempty"`
}

// Workspace is a prepared checkout in a guest.
type Workspace struct {
	VM        string `json:"vm"`
	RepoPath  string `json:"repo_path"` // host work tree root
	GuestPath string `json:"guest_path"`
	Mode      string `json:"mode"`
	ReadOnly  bool   `json:"readonly,omitempty"`
	Head      string `json:"head,omitempty"`   // commit checked out in the guest
	Branch    string `json:"branch,omitempty"` // branch checked out in the guest, "" when detached
	// Files counts the files and symlinks of the guest work tree (.git
	// aside). Bytes is the file content sent (some files may instead be
	// checked out from the git metadata in the guest), Wire the size of
	// the stream as sent (compressed or not).
	Files    int           `json:"files"`
	Bytes    int64         `json:"bytes"`
	Wire     int64         `json:"wire_bytes"`
	Duration time.Duration `json:"duration"`
}
