package main

import (
	"context"
	"log/slog"

	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/web"
)

// webUI is the UI's bound socket and the user's secret for it.
type webUI struct {
	ln    *web.Listener
	token string
}

// listenWeb binds the web UI's address and loads its token (tokenPath,
// created at the first start). The daemon runs on without the UI when
// web_listen_addr is "" or taken, or the token cannot be kept (daemon
// status then says disabled): the UI is never served without its secret.
func listenWeb(cfg config.Config, tokenPath string, log *slog.Logger) *webUI {
	if cfg.WebListenAddr == "" {
		return nil
	}
	token, err := web.LoadToken(tokenPath)
	if err != nil {
		log.Warn("web UI disabled", "err", err)
		return nil
	}
	ln, err := web.Listen(cfg.WebListenAddr)
	if err != nil {
		log.Warn("web UI disabled", "err", err)
		return nil
	}
	if ln.Exposed {
		log.Warn("THE WEB UI IS REACHABLE FROM THE NETWORK: anyone who can reach " + cfg.WebListenAddr +
			" and learns its token can start, stop and delete your VMs; set web_listen_addr = \"127.0.0.1:7777\" unless you mean it")
	}
	log.Info("web UI", "url", ln.URL) // without the token: 'banger web' prints it
	return &webUI{ln: ln, token: token}
}

// url is the UI's address, or "" without a UI.
func (u *webUI) url() string {
	if u == nil {
		return ""
	}
	return u.ln.URL
}

// loginURL is the address that logs a browser in, or "" without a UI.
func (u *webUI) loginURL() string {
	if u == nil {
		return ""
	}
	return web.TokenURL(u.ln.URL, u.token)
}

func (u *webUI) close() {
	if u != nil {
		u.ln.Close()
	}
}

// serveWeb serves the UI over d until ctx ends or the returned stop is
// called; stop waits for the UI to shut down.
func serveWeb(ctx context.Context, d *daemon.Daemon, u *webUI, log *slog.Logger) (stop func()) {
	if u == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := web.New(d, u.ln, u.token, web.Options{Logger: log}).Serve(ctx); err != nil {
			log.Warn("web UI stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}
