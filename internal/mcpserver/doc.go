// Package mcpserver is banger's Model Context Protocol server ('banger
// mcp'): it exposes VMs, exec, files, workspaces and sessions as MCP tools
// to an agent, talking to bangerd only through the public client
// (banger/client).
//
// The MCP client is an agent, not the user, so every tool runs inside a
// Scope: by default only VMs this server created (recorded in a file
// under the state directory, so a restarted server keeps them), at most
// MaxVMs of them, from the allowed images; and host paths of workspaces
// only inside the git work tree the server started in and the allowed
// directories (hostpaths.go). Refusals are tool errors that say what was
// refused and what to do instead.
//
// What a guest sends back is hostile: every output is bounded (with a
// truncation marker) and made valid UTF-8 before it goes into JSON.
package mcpserver
