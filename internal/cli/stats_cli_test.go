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

	"banger/api"
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

	// The event log: the VM's own events, in vm show and in events.
	if out := cli(ctx, "vm", "show", "dev"); !strings.Contains(out, "events:") || !strings.Contains(out, "kept alive") {
		t.Errorf("vm show lacks the vm's recent events:\n%s", out)
	}
	if out := cli(ctx, "events", "--vm", "dev"); !strings.Contains(out, "vm/dev") || !strings.Contains(out, "no longer kept alive") {
		t.Errorf("events --vm dev:\n%s", out)
	}
	var evs []api.LogEntry
	if err := json.Unmarshal([]byte(cli(ctx, "events", "--json", "-n", "2")), &evs); err != nil || len(evs) != 2 || evs[0].ID >= evs[1].ID {
		t.Errorf("events --json -n 2 = %+v, %v; want the two newest, oldest first", evs, err)
	}
	if out := cli(ctx, "events", "--image", "nothing-here"); out != "" {
		t.Errorf("events of an image without any: %q", out)
	}
	// --follow prints what happens after it started, one JSON object a line.
	fctx, fstop := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer fstop()
	go func() {
		time.Sleep(500 * time.Millisecond)
		w.D.SetKeepAlive(ctx, "dev", true)
	}()
	out = cli(fctx, "events", "--vm", "dev", "-n", "1", "--follow", "--json")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var last api.LogEntry
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil || !strings.Contains(last.Message, "is kept alive") {
		t.Errorf("events --follow --json printed:\n%s\nwant the newest event, then the keep-alive made while following", out)
	}
}
