// Package authsync names the coding agents whose credentials banger can
// copy from the host into a guest, and the files that hold them. Which
// tools a VM gets is decided per VM (config auth_sync, vm create
// --auth-sync/--no-auth-sync, and the image's source); the copy itself is
// the guest operations' (internal/daemon/guestops).
package authsync

import (
	"fmt"
	"slices"
	"strings"
)

// Tool is one coding agent and its credential file, relative to the home
// directory on the host and to /root in the guest.
type Tool struct {
	Name string
	File string
}

// Tools are the coding agents banger knows, in the order they are listed.
var Tools = []Tool{
	{Name: "opencode", File: ".local/share/opencode/auth.json"},
	{Name: "claude", File: ".claude/.credentials.json"},
	{Name: "pi", File: ".pi/agent/auth.json"},
}

// All returns every tool name, in order.
func All() []string {
	names := make([]string, len(Tools))
	for i, t := range Tools {
		names[i] = t.Name
	}
	return names
}

// Check returns names in the canonical order without repeats, or an error
// naming the first unknown tool and the known ones.
func Check(names []string) ([]string, error) {
	out := []string{}
	for _, n := range names {
		if !slices.ContainsFunc(Tools, func(t Tool) bool { return t.Name == n }) {
			return nil, fmt.Errorf("%q is not a tool banger syncs credentials for; use any of %s", n, strings.Join(All(), ", "))
		}
	}
	for _, t := range Tools {
		if slices.Contains(names, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// Parse reads a comma-separated list of tool names ("opencode,claude");
// white space around names is ignored, "" is no tool.
func Parse(s string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return Check(names)
}

// Files returns the credential files of the named tools, in order.
func Files(names []string) []Tool {
	var out []Tool
	for _, t := range Tools {
		if slices.Contains(names, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// Describe renders a tool list for people: "opencode, claude" or "off".
func Describe(names []string) string {
	if len(names) == 0 {
		return "off"
	}
	return strings.Join(names, ", ")
}
