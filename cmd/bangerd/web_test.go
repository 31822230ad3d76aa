package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"banger/internal/config"
)

func TestListenWeb(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := config.Default()

	cfg.WebListenAddr = ""
	if ln := listenWeb(cfg, log); ln != nil {
		ln.Close()
		t.Fatal(`web_listen_addr = "" still listens`)
	}

	cfg.WebListenAddr = "127.0.0.1:0"
	ln := listenWeb(cfg, log)
	if ln == nil || ln.Exposed || !strings.HasPrefix(webURL(ln), "http://127.0.0.1:") {
		t.Fatalf("loopback listener = %+v", ln)
	}
	// The address is taken: the daemon runs on without its UI, and says so.
	taken := cfg
	taken.WebListenAddr = strings.TrimPrefix(webURL(ln), "http://")
	if again := listenWeb(taken, log); again != nil {
		again.Close()
		t.Error("a second listener on a taken address")
	}
	ln.Close()
	if !strings.Contains(logs.String(), "web UI disabled") {
		t.Errorf("no warning for a taken address:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "REACHABLE FROM THE NETWORK") {
		t.Errorf("loopback listener warned about exposure:\n%s", logs.String())
	}

	logs.Reset()
	cfg.WebListenAddr = "0.0.0.0:0"
	ln = listenWeb(cfg, log)
	if ln == nil {
		t.Fatal("no listener on 0.0.0.0")
	}
	defer ln.Close()
	if !ln.Exposed || !strings.Contains(logs.String(), "REACHABLE FROM THE NETWORK") {
		t.Errorf("listening on all addresses: exposed=%v, log:\n%s", ln.Exposed, logs.String())
	}
}
