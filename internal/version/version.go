// Package version holds build metadata stamped in by the linker.
package version

import "runtime/debug"

// Set with -ldflags "-X banger/internal/version.Version=... -X banger/internal/version.Commit=...".
var (
	Version = "dev"
	Commit  = ""
)

// String returns "VERSION (COMMIT)" when a commit is known, else the version.
func String() string {
	c := Commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	if c == "" {
		return Version
	}
	return Version + " (" + c + ")"
}
