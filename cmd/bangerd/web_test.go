package main

import (
	"bytes"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/config"
)

func TestListenWeb(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := config.Default()
	tokenPath := filepath.Join(t.TempDir(), "web-token")

	cfg.WebListenAddr = ""
	if ui := listenWeb(cfg, tokenPath, log); ui != nil {
		ui.close()
		t.Fatal(`web_listen_addr = "" still listens`)
	}

	cfg.WebListenAddr = "127.0.0.1:0"
	ui := listenWeb(cfg, tokenPath, log)
	if ui == nil || ui.ln.Exposed || !strings.HasPrefix(ui.url(), "http://127.0.0.1:") {
		t.Fatalf("loopback listener = %+v", ui)
	}
	// The login URL carries the token kept in the private file; the UI's
	// plain URL (what status shows) and the log do not.
	if strings.Contains(ui.url(), "token") {
		t.Errorf("the UI's plain URL %s carries the token", ui.url())
	}
	u, err := url.Parse(ui.loginURL())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tokenPath)
	if err != nil || u.Query().Get("token") == "" || strings.TrimSpace(string(data)) != u.Query().Get("token") {
		t.Errorf("url %s, token file %q (%v): want the file's token in the URL", ui.loginURL(), data, err)
	}
	if fi, err := os.Stat(tokenPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	if strings.Contains(logs.String(), u.Query().Get("token")) {
		t.Errorf("the log shows the token:\n%s", logs.String())
	}
	// The address is taken: the daemon runs on without its UI, and says so.
	taken := cfg
	taken.WebListenAddr = u.Host
	if again := listenWeb(taken, tokenPath, log); again != nil {
		again.close()
		t.Error("a second listener on a taken address")
	}
	ui.close()
	if !strings.Contains(logs.String(), "web UI disabled") {
		t.Errorf("no warning for a taken address:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "REACHABLE FROM THE NETWORK") {
		t.Errorf("loopback listener warned about exposure:\n%s", logs.String())
	}

	logs.Reset()
	cfg.WebListenAddr = "0.0.0.0:0"
	ui = listenWeb(cfg, tokenPath, log)
	if ui == nil {
		t.Fatal("no listener on 0.0.0.0")
	}
	defer ui.close()
	if !ui.ln.Exposed || !strings.Contains(logs.String(), "REACHABLE FROM THE NETWORK") {
		t.Errorf("listening on all addresses: exposed=%v, log:\n%s", ui.ln.Exposed, logs.String())
	}

	// A token that cannot be kept disables the UI rather than serving it open.
	logs.Reset()
	cfg.WebListenAddr = "127.0.0.1:0"
	if ui := listenWeb(cfg, filepath.Join(t.TempDir(), "missing", "web-token"), log); ui != nil {
		ui.close()
		t.Error("the UI listens without a token")
	}
	if !strings.Contains(logs.String(), "web UI disabled") {
		t.Errorf("no warning when the token cannot be made:\n%s", logs.String())
	}
}
