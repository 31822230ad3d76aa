package mcpserver

import (
	"context"
	"path/filepath"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
	"banger/api/errdefs"
)

type prepareIn struct {
	VM        string `json:"vm" jsonschema:"name of the VM"`
	HostPath  string `json:"host_path" jsonschema:"absolute host path inside a git repository"`
	GuestPath string `json:"guest_path,omitempty" jsonschema:"absolute guest directory; /root/repo when omitted; an existing directory there is replaced"`
	Mode      string `json:"mode,omitempty" jsonschema:"shallow (default: the work tree as it is on the host, one commit of history), history (the branch's whole history) or full_copy (the whole repository directory)"`
	Branch    string `json:"branch,omitempty" jsonschema:"create this branch in the guest checkout and check it out"`
	ReadOnly  bool   `json:"readonly,omitempty" jsonschema:"make the guest tree immutable"`
}

type workspaceOut struct {
	VM        string `json:"vm"`
	RepoPath  string `json:"repo_path" jsonschema:"host work tree root"`
	GuestPath string `json:"guest_path"`
	Mode      string `json:"mode"`
	Head      string `json:"head,omitempty" jsonschema:"commit checked out in the guest"`
	Branch    string `json:"branch,omitempty"`
	Files     int    `json:"files"`
	Bytes     int64  `json:"bytes"`
}

type exportIn struct {
	VM        string `json:"vm" jsonschema:"name of the VM"`
	HostPath  string `json:"host_path" jsonschema:"absolute host path inside the repository the workspace was prepared from"`
	GuestPath string `json:"guest_path,omitempty" jsonschema:"the guest checkout; /root/repo when omitted"`
	Branch    string `json:"branch,omitempty" jsonschema:"host branch to create; banger/<vm> when omitted"`
	Force     bool   `json:"force,omitempty" jsonschema:"replace an existing host branch of that name"`
}

type exportOut struct {
	Branch      string `json:"branch" jsonschema:"the host branch that now holds the guest's work"`
	Commit      string `json:"commit"`
	Replaced    string `json:"replaced,omitempty" jsonschema:"the commit the branch pointed at before force replaced it"`
	Base        string `json:"base,omitempty" jsonschema:"the commit the guest's work starts at"`
	Commits     int    `json:"commits" jsonschema:"the guest's commits on top of base"`
	Uncommitted bool   `json:"uncommitted" jsonschema:"the last commit holds the guest's uncommitted changes"`
}

func (s *Server) addWorkspaceTools() {
	scope := " host_path may be " + s.paths.describe() + "."
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "workspace_prepare",
		Description: "Copy a host git checkout into a VM (default /root/repo) so commands can build and test it there. " +
			"Reports progress when the client sends a progress token. Bring the work back with workspace_export." + scope,
	}, s.workspacePrepare)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "workspace_export",
		Description: "Bring a VM's checkout back to the host repository as a new branch: the guest's commits, plus " +
			"one commit of its uncommitted changes. The host work tree is not touched." + scope,
	}, s.workspaceExport)
}

func (s *Server) workspacePrepare(ctx context.Context, req *mcp.CallToolRequest, in prepareIn) (*mcp.CallToolResult, workspaceOut, error) {
	if !filepath.IsAbs(in.HostPath) {
		return nil, workspaceOut{}, errdefs.Invalid("host_path %q is not absolute; give the full host path of the git checkout", in.HostPath)
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, workspaceOut{}, err
	}
	hostPath, err := s.paths.check(ctx, in.HostPath)
	if err != nil {
		return nil, workspaceOut{}, err
	}
	ws, err := s.cl.PrepareWorkspace(ctx, in.VM, api.WorkspacePrepareRequest{
		Path: hostPath, GuestPath: in.GuestPath, Mode: in.Mode, Branch: in.Branch, ReadOnly: in.ReadOnly,
	}, progress(ctx, req))
	if err != nil {
		return nil, workspaceOut{}, err
	}
	return nil, workspaceOut{
		VM: ws.VM, RepoPath: ws.RepoPath, GuestPath: ws.GuestPath, Mode: ws.Mode, Head: ws.Head, Branch: ws.Branch, Files: ws.Files, Bytes: ws.Bytes,
	}, nil
}

func (s *Server) workspaceExport(ctx context.Context, req *mcp.CallToolRequest, in exportIn) (*mcp.CallToolResult, exportOut, error) {
	if !filepath.IsAbs(in.HostPath) {
		return nil, exportOut{}, errdefs.Invalid("host_path %q is not absolute; give the full host path of the repository", in.HostPath)
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, exportOut{}, err
	}
	hostPath, err := s.paths.check(ctx, in.HostPath)
	if err != nil {
		return nil, exportOut{}, err
	}
	ex, err := s.cl.ExportWorkspace(ctx, in.VM, api.WorkspaceExportRequest{
		RepoPath: hostPath, GuestPath: in.GuestPath, Branch: in.Branch, Force: in.Force,
	}, progress(ctx, req))
	if err != nil {
		return nil, exportOut{}, err
	}
	return nil, exportOut{
		Branch: ex.Branch, Commit: ex.Commit, Replaced: ex.Replaced, Base: ex.Base, Commits: ex.Commits, Uncommitted: ex.Uncommitted,
	}, nil
}
