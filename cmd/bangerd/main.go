// Command bangerd is banger's per-user daemon. It is the composition
// root: it builds the daemon service, then the API server and the web UI
// around it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/paths"
	"banger/internal/server"
	"banger/internal/sshx"
	"banger/internal/store"
	"banger/internal/version"

	"golang.org/x/crypto/ssh"
)

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	setupNet := flag.Bool("setup-network", false, "when running as root, create or repair banger's bridge, TAPs and NAT at start (what 'banger system setup' does)")
	bootTimeout := flag.Duration("boot-timeout", 0, "how long to wait for a booting guest's agent and SSH (default: 60s with KVM, 3m without)")
	flag.Parse()
	if *showVersion {
		fmt.Println("bangerd", version.String())
		return
	}
	if err := run(*setupNet, *bootTimeout); err != nil {
		fmt.Fprintln(os.Stderr, "bangerd:", err)
		os.Exit(1)
	}
}

func run(setupNet bool, bootTimeout time.Duration) error {
	layout, err := paths.FromEnv()
	if err != nil {
		return err
	}
	if err := layout.Ensure(); err != nil {
		return err
	}
	cfg, err := config.Load(layout.ConfigFile)
	if err != nil {
		return err
	}
	logger, closeLog, err := openLog(layout.LogFile, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer closeLog()
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	sock, err := server.Listen(layout)
	if err != nil {
		return err
	}
	defer sock.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, layout.DBPath)
	if err != nil {
		return err
	}
	defer st.Close()
	pub, err := sshx.EnsureKey(cfg.SSHKey(layout.ConfigDir))
	if err != nil {
		return err
	}
	netw, closeNet, err := hostNetwork(ctx, cfg, layout, st, logger, setupNet)
	if err != nil {
		return err
	}
	defer closeNet()
	ui := listenWeb(cfg, layout.WebToken, logger)
	defer ui.close()
	d, err := daemon.New(ctx, daemon.Options{
		Layout: layout, Config: cfg, Store: st, Logger: logger,
		Driver:       driver(cfg),
		Network:      netw,
		AgentBinary:  agentBinary(),
		SSHPublicKey: string(ssh.MarshalAuthorizedKey(pub)),
		BootTimeout:  bootTimeout,
		WebURL:       ui.url(),
		WebLoginURL:  ui.loginURL(),
		WebExposed:   ui != nil && ui.ln.Exposed,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	defer serveWeb(ctx, d, ui, logger)() // the UI stops before the daemon closes
	logger.Info("serving", "socket", layout.SocketPath, "version", version.String())
	srv := server.New(d, logger, stop)
	err = srv.Serve(ctx, &server.Listener{Listener: sock, Log: logger})
	logger.Info("stopped")
	return err
}

func openLog(path string, level slog.Level) (*slog.Logger, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log %s: %w", path, err)
	}
	var w io.Writer = f
	if os.Getenv("BANGERD_LOG_STDERR") != "" {
		w = io.MultiWriter(f, os.Stderr)
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(h), func() { f.Close() }, nil
}
