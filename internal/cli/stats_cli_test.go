package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/daemon"
	"banger/internal/daemon/daemontest"
	"banger/internal/paths"
	"banger/internal/server"
)

// TestVMStatsAndSetCommands runs 'vm stats', 'vm show' and 'vm set'
// against a real daemon service (fake VMM driver) behind the real API
// server on the socket the CLI looks for.
func TestVMStatsAndSetCommands(t *testing.T) {
	rt, err := os.MkdirTemp("", "bgcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("BANGER_NO_AUTOSTART", "1")
	layout, err := paths.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	w := daemontest.New(t, func(o *daemon.Options) {
		o.Config.StatsPollInterval = 100 * time.Millisecond
		o.Config.AutoStopStaleAfter = time.Hour
	})
	sock, err := server.Listen(layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	w.CreateVM(t, "dev")

	cli := func(ctx context.Context, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		root := NewRoot(&out, &errb)
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("banger %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	out := cli(ctx, "vm", "stats", "dev")
	for _, want := range []string{"vm:", "dev (running)", "memory:", "vmm process:", "auto-stop:"} {
		if !strings.Contains(out, want) {
			t.Errorf("vm stats lacks %q:\n%s", want, out)
		}
	}
	var st api.VMStats
	if err := json.Unmarshal([]byte(cli(ctx, "vm", "stats", "dev", "--json", "--history", "5")), &st); err != nil || st.Current == nil || len(st.History) == 0 {
		t.Errorf("vm stats --json = %+v, %v", st, err)
	}
	if out := cli(ctx, "vm", "show", "dev"); !strings.Contains(out, "usage:") || !strings.Contains(out, "keep alive:") {
		t.Errorf("vm show lacks the usage lines:\n%s", out)
	}
	if out := cli(ctx, "vm", "set", "dev", "--keep-alive"); !strings.Contains(out, "kept alive") {
		t.Errorf("vm set --keep-alive: %q", out)
	}
	if out := cli(ctx, "vm", "stats", "dev"); !strings.Contains(out, "kept alive") {
		t.Errorf("vm stats after keep-alive:\n%s", out)
	}
	cli(ctx, "vm", "set", "dev", "--keep-alive=false")
	if vm, _ := w.D.VM(ctx, "dev"); vm.KeepAlive {
		t.Error("--keep-alive=false did not clear keep-alive")
	}

	// --watch prints the header, then rows, until interrupted.
	wctx, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stop()
	lines := strings.Split(strings.TrimSpace(cli(wctx, "vm", "stats", "dev", "--watch")), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "TIME") {
		t.Errorf("vm stats --watch printed:\n%s", strings.Join(lines, "\n"))
	}
}
