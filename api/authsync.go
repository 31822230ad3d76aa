package api

// AuthSyncRequest is the body of POST /v1/vms/{name}/auth-sync, which
// copies the host's coding-agent credentials into a running VM now.
type AuthSyncRequest struct {
	// Tools picks the coding agents (opencode, claude, pi); empty means
	// the VM's own auth_sync list, or every tool when that list is empty
	// (asking for a sync is saying so).
	Tools []string `json:"tools,omitempty"`
}

// AuthSync says what a credential sync copied: the files (relative to the
// home directory, the same on both sides), never their content.
type AuthSync struct {
	VM    string   `json:"vm"`
	Tools []string `json:"tools"` // the tools asked for
	// Files were copied (mode 0600); Missing are the files of those tools
	// that the host does not have (or that are not regular files of at
	// most 1 MiB).
	Files   []string `json:"files"`
	Missing []string `json:"missing"`
}

// SetAuthSyncRequest is the body of PUT /v1/vms/{name}/auth-sync, which
// changes the tools whose credentials the VM receives at each boot.
type SetAuthSyncRequest struct {
	Tools *[]string `json:"tools"` // required; [] for none
}
