package config

import (
	"fmt"
	"strings"

	"banger/internal/authsync"
)

const tomlArray = "an array"

// authSyncField is auth_sync: the tools whose credentials VMs from
// locally made images receive, as a TOML array of names.
var authSyncField = field{
	key: "auth_sync", want: tomlArray, example: `["opencode", "claude", "pi"]`,
	set: func(c *Config, v any) error {
		names := []string{}
		for _, e := range v.([]any) {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("expected tool names as strings, got %s; write it like auth_sync = [\"opencode\", \"claude\"], or [] for none", tomlType(e))
			}
			names = append(names, s)
		}
		c.AuthSync = names
		return nil
	},
	check: func(c Config) error {
		if _, err := authsync.Check(c.AuthSync); err != nil {
			return fmt.Errorf("%v, or [] for none", err)
		}
		return nil
	},
	format: func(c Config) string {
		q := make([]string, len(c.AuthSync))
		for i, n := range c.AuthSync {
			q[i] = quote(n)
		}
		return "[" + strings.Join(q, ", ") + "]"
	},
}
