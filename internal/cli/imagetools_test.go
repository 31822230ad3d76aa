package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"banger/api"
)

// TestImageShowToolVersions: image show lists each devbox tool with the
// version its build pinned and names the missing ones; --json carries the
// versions as the daemon gave them.
func TestImageShowToolVersions(t *testing.T) {
	now := time.Now()
	dev := api.Image{Name: "dev", Rootfs: "/r", Kernel: "/k", Source: "build", CreatedAt: now,
		Tools: []string{"opencode", "claude", "pi"}, ToolVersions: map[string]string{"opencode": "1.18.18", "claude": "2.1.332", "pi": "0.73.1"}}
	old := api.Image{Name: "old", Rootfs: "/r", Kernel: "/k", Source: "register", CreatedAt: now, Tools: []string{"mise", "opencode", "claude", "pi"}}
	fakeDaemon(t, map[string]any{"/v1/daemon": api.DaemonStatus{PID: 1, Version: "test"}, "/v1/images/dev": dev, "/v1/images/old": old})

	out := runCLI(t, "image", "show", "dev")
	if want := "tools:      opencode 1.18.18, claude 2.1.332, pi 0.73.1; missing: mise\n"; !strings.Contains(out, want) {
		t.Errorf("image show dev lacks %q:\n%s", want, out)
	}
	// Tools found without a record (registered, not built) have no version.
	if out := runCLI(t, "image", "show", "old"); !strings.Contains(out, "tools:      mise, opencode, claude, pi\n") {
		t.Errorf("image show old:\n%s", out)
	}
	var got api.Image
	if err := json.Unmarshal([]byte(runCLI(t, "image", "show", "dev", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.ToolVersions["opencode"] != "1.18.18" || got.ToolVersions["pi"] != "0.73.1" || len(got.ToolVersions) != 3 {
		t.Errorf("image show --json tool_versions = %v", got.ToolVersions)
	}
}
