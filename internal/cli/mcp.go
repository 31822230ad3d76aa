package cli

import (
	"fmt"
	"os"

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
scopes with --scope.

The workspace tools copy host checkouts into VMs and write branches back,
so they are limited too: to the git work tree containing the directory
banger mcp was started in, plus the directories given with --allow-repo
(symlinks are followed before comparing, so no path leads out of them).
Started outside a git checkout and without --allow-repo, the workspace
tools refuse every path (the VM tools still work). --all-repos lifts the
limit: the agent may then read any repository of yours into a VM and
write branches into any of them.

See docs/mcp.md for the tools and how to register the server with an
agent.`,
		Example: `  banger mcp
  banger mcp --scope myproject --max-vms 2 --allow-image default
  banger mcp --allow-repo ~/src/lib --allow-repo ~/src/app
  claude mcp add banger -- banger mcp`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sc.Validate(); err != nil {
				return err
			}
			wd, err := os.Getwd()
			if err != nil {
				return fmt.Errorf("finding the directory banger mcp was started in: %w", err)
			}
			sc.WorkDir = wd
			if sc.AllRepos {
				fmt.Fprintln(cmd.ErrOrStderr(), "banger mcp: WARNING: --all-repos: the agent may copy any git repository of this user into a VM and write branches into any of them")
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
	f.StringArrayVar(&sc.Repos, "allow-repo", nil, "directory whose git work trees the workspace tools may use, besides the one banger mcp starts in (repeatable)")
	f.BoolVar(&sc.AllRepos, "all-repos", false, "let the workspace tools use any host path: the agent may read any repository of yours and write branches into any (dangerous)")
	return cmd
}
