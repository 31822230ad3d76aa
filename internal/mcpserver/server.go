package mcpserver

import (
	"context"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
	"banger/client"
)

// Options are what a Server needs.
type Options struct {
	// Client talks to bangerd; it is the server's only way to the daemon.
	Client *client.Client
	// StateDir is banger's state directory; the scope's ownership record
	// is kept under StateDir/mcp.
	StateDir string
	// Scope limits what the MCP client may touch.
	Scope Scope
	// Version is reported to MCP clients.
	Version string
}

// Server is banger's MCP server: tools over one daemon, within a scope.
type Server struct {
	cl    *client.Client
	guard *guard
	paths hostPaths
	mcp   *mcp.Server
}

// New builds the server and its tools.
func New(opts Options) (*Server, error) {
	if opts.Scope.Name == "" {
		opts.Scope.Name = DefaultScopeName
	}
	if err := opts.Scope.Validate(); err != nil {
		return nil, err
	}
	paths, err := resolveHostPaths(context.Background(), opts.Scope)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cl:    opts.Client,
		guard: &guard{scope: opts.Scope, own: newOwnership(opts.StateDir, opts.Scope.Name), now: time.Now},
		paths: paths,
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "banger", Title: "banger sandboxes", Version: opts.Version}, &mcp.ServerOptions{
		Instructions: instructions(opts.Scope, paths),
	})
	s.addVMTools()
	s.addForkTool()
	s.addExecTools()
	s.addFileTools()
	s.addWorkspaceTools()
	s.addSessionTools()
	return s, nil
}

// Run serves one MCP client on t until it disconnects or ctx ends.
func (s *Server) Run(ctx context.Context, t mcp.Transport) error {
	return s.mcp.Run(ctx, t)
}

// MCP is the underlying SDK server (tests connect in-memory clients to it).
func (s *Server) MCP() *mcp.Server { return s.mcp }

func instructions(sc Scope, paths hostPaths) string {
	msg := "banger runs development sandboxes as microVMs. Create a VM with vm_create, run commands with vm_exec, " +
		"move files with file_write and file_read, bring a host git checkout in with workspace_prepare and your work back " +
		"as a host branch with workspace_export, keep long processes running with session_start, try alternatives side by side with vm_fork, and delete the VM with vm_delete when done."
	if !sc.AllVMs {
		msg += " You may only use VMs you created through this server."
	}
	if sc.MaxVMs > 0 {
		msg += fmt.Sprintf(" You may have at most %d VM(s) at once.", sc.MaxVMs)
	}
	msg += " workspace_prepare and workspace_export may use " + paths.describe() + "."
	return msg
}

// progress relays a long call's daemon events as MCP progress
// notifications when the client asked for them (gave a progress token);
// otherwise it returns nil, which the client calls accept.
func progress(ctx context.Context, req *mcp.CallToolRequest) func(api.Event) {
	token := req.Params.GetProgressToken()
	if token == nil || req.Session == nil {
		return nil
	}
	n := 0
	return func(ev api.Event) {
		n++ // progress must grow with every notification; events of different items have their own counters
		msg := ev.Message
		if msg == "" {
			msg = ev.Step
		}
		if ev.Item != "" && ev.Total > 0 {
			msg = fmt.Sprintf("%s %s: %d/%d", msg, ev.Item, ev.Current, ev.Total)
		}
		req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
			ProgressToken: token, Progress: float64(n), Message: cleanText([]byte(msg)),
		})
	}
}

// empty is the input of tools without arguments.
type empty struct{}
