package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/internal/daemon/daemontest"
	"banger/internal/paths"
	"banger/internal/server"
)

// TestAuthSyncCommands runs vm create --no-auth-sync, vm show and vm auth
// sync against a real daemon service (fake VMM) behind the API server.
func TestAuthSyncCommands(t *testing.T) {
	rt, err := os.MkdirTemp("", "bgcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("BANGER_NO_AUTOSTART", "1")
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".pi/agent"), 0o700)
	os.WriteFile(filepath.Join(home, ".pi/agent/auth.json"), []byte(`{"pi":"sk-pi"}`), 0o600)
	layout, err := paths.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	w := daemontest.New(t, nil)
	sock, err := server.Listen(layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })

	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := NewRoot(&out, &errb)
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	if _, err := cli("vm", "create", "--name", "x", "--auth-sync", "pi", "--no-auth-sync"); err == nil || !strings.Contains(err.Error(), "contradict") {
		t.Errorf("both flags: err = %v", err)
	}
	if _, err := cli("vm", "create", "--name", "x", "--auth-sync", "codex"); err == nil || !strings.Contains(err.Error(), `"codex" is not a tool`) {
		t.Errorf("unknown tool: err = %v", err)
	}
	if out, err := cli("vm", "create", "--name", "dev", "--no-auth-sync", "--disk-size", "64M"); err != nil {
		t.Fatalf("vm create: %v\n%s", err, out)
	}
	if out, _ := cli("vm", "show", "dev"); !strings.Contains(out, "auth sync:") || !strings.Contains(out, "off") {
		t.Errorf("vm show does not say auth sync is off:\n%s", out)
	}
	out, err := cli("vm", "auth", "sync", "dev")
	if err != nil {
		t.Fatal(err)
	}
	want := "copied into vm dev (mode 0600): .pi/agent/auth.json\nnot on this host: .local/share/opencode/auth.json, .claude/.credentials.json\n"
	if out != want {
		t.Errorf("vm auth sync printed %q, want %q", out, want)
	}
	if out, err := cli("vm", "auth", "set", "dev", "--auth-sync", "pi,opencode"); err != nil || out != "vm dev: auth sync opencode, pi from its next boot\n" {
		t.Errorf("vm auth set printed %q, %v", out, err)
	}
	if _, err := cli("vm", "auth", "set", "dev"); err == nil || !strings.Contains(err.Error(), "nothing to set") {
		t.Errorf("vm auth set without a flag: err = %v", err)
	}
	if out, _ := cli("vm", "show", "dev"); !strings.Contains(out, "opencode, pi") {
		t.Errorf("vm show after vm auth set:\n%s", out)
	}
	if out, _ := cli("vm", "auth", "sync", "dev", "--tools", "claude"); !strings.Contains(out, "copied nothing into vm dev: the host has none of .claude/.credentials.json") {
		t.Errorf("vm auth sync --tools claude printed %q", out)
	}
}

func TestRunSaysWhichCredentialsTheVMLacks(t *testing.T) {
	tests := []struct {
		name       string
		auth       []string
		imageTools []string
		want       string
	}{
		{"unknown to the daemon", nil, nil, ""},
		{"every tool synced", []string{"opencode", "claude", "pi"}, nil, ""},
		{"off, tools unknown", []string{}, nil,
			"\ncredentials: vm dev gets none of yours for opencode,claude,pi (auth sync: off); to copy them in:\n  banger vm auth sync dev --tools opencode,claude,pi\n"},
		{"image without the unsynced tools", []string{"claude"}, []string{"mise", "claude"}, ""},
		{"some", []string{"claude"}, []string{"opencode", "claude"},
			"\ncredentials: vm dev gets none of yours for opencode (auth sync: claude); to copy them in:\n  banger vm auth sync dev --tools opencode\n"},
	}
	for _, tt := range tests {
		if got := authNextStep(api.VM{Name: "dev", AuthSync: tt.auth}, tt.imageTools); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	var out bytes.Buffer
	printNextSteps(&out, runResult{VM: api.VM{Name: "dev", AuthSync: []string{}}, ImageTools: []string{"pi"}})
	if !strings.Contains(out.String(), "banger vm auth sync dev --tools pi") {
		t.Errorf("vm run's next steps lack the auth sync line:\n%s", out.String())
	}
}
