package cli

import (
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"banger/internal/mcpserver"
	"banger/internal/version"
)

func (a *app) mcpCmd() *cobra.Command {
	sc := mcpserver.Scope{Name: mcpserver.DefaultScopeName, MaxVMs: mcpserver.DefaultMaxVMs}
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve banger's VMs as tools to an agent (Model Context Protocol on stdio)",
		Long: `Run a Model Context Protocol server on stdin and stdout, so a coding agent
(Claude Code, opencode, any MCP client) can create sandbox VMs, run
commands and move files in them, prepare workspaces from host checkouts
and export work back as host branches, and manage sessions.

The agent is not the user, so it works inside a scope: by default it may
only use VMs this scope created (recorded under banger's state directory,
so a restarted server keeps them), at most --max-vms of them, from the
--allow-image images when any are given. Several agents can use separate
scopes with --scope. See docs/mcp.md for the tools and how to register
the server with an agent.`,
		Example: `  banger mcp
  banger mcp --scope myproject --max-vms 2 --allow-image default
  claude mcp add banger -- banger mcp`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sc.Validate(); err != nil {
				return err
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			s, err := mcpserver.New(mcpserver.Options{Client: cl, StateDir: a.layout.StateDir, Scope: sc, Version: version.String()})
			if err != nil {
				return err
			}
			if err := s.Run(cmd.Context(), &mcp.StdioTransport{}); err != nil && cmd.Context().Err() == nil {
				return fmt.Errorf("serving MCP on stdin and stdout: %w (banger mcp is started by an MCP client; see docs/mcp.md)", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sc.Name, "scope", sc.Name, "name of the scope whose VMs the agent owns (separate agents: separate scopes)")
	f.BoolVar(&sc.AllVMs, "all-vms", false, "let the agent use every VM of the user, not only its own (deleting stays limited to its own)")
	f.IntVar(&sc.MaxVMs, "max-vms", sc.MaxVMs, "most VMs the scope may own at once (0: no cap)")
	f.StringArrayVar(&sc.Images, "allow-image", nil, "image the agent may create VMs from (repeatable; default: any); the first is its default")
	return cmd
}
