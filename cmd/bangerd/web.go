package main

import (
	"context"
	"log/slog"

	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/web"
)

// listenWeb binds the web UI's address. The daemon runs on without the UI
// when web_listen_addr is "" or taken (daemon status then says disabled).
func listenWeb(cfg config.Config, log *slog.Logger) *web.Listener {
	if cfg.WebListenAddr == "" {
		return nil
	}
	ln, err := web.Listen(cfg.WebListenAddr)
	if err != nil {
		log.Warn("web UI disabled", "err", err)
		return nil
	}
	if ln.Exposed {
		log.Warn("THE WEB UI IS REACHABLE FROM THE NETWORK: anyone who can reach " + cfg.WebListenAddr +
			" can start, stop and delete your VMs; set web_listen_addr = \"127.0.0.1:7777\" unless you mean it")
	}
	log.Info("web UI", "url", ln.URL)
	return ln
}

func webURL(ln *web.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.URL
}

// serveWeb serves the UI over d until ctx ends or the returned stop is
// called; stop waits for the UI to shut down.
func serveWeb(ctx context.Context, d *daemon.Daemon, ln *web.Listener, log *slog.Logger) (stop func()) {
	if ln == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := web.New(d, ln, web.Options{Logger: log}).Serve(ctx); err != nil {
			log.Warn("web UI stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}
