package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

//go:embed assets
var assets embed.FS

// Options are the optional settings of a Server.
type Options struct {
	// Logger receives refused requests and failed actions; nil discards.
	Logger *slog.Logger
	// Refresh is how often live pages are updated; 0 means every second.
	Refresh time.Duration
}

// Listener is the UI's bound socket and the URL to reach it.
type Listener struct {
	net.Listener
	// URL is where a browser on this machine opens the UI.
	URL string
	// Exposed is set when the UI is reachable from other machines.
	Exposed bool
	hosts   hostRule
}

// Listen binds addr (host:port; port 0 picks one).
func Listen(addr string) (*Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parsing web_listen_addr %q: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the web UI on %s: %w (set web_listen_addr to a free address, or \"\" to disable the UI)", addr, err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	l := &Listener{Listener: ln, hosts: newHostRule(host, port)}
	ip, perr := netip.ParseAddr(host)
	switch {
	case host == "" || (perr == nil && ip.IsUnspecified()):
		l.URL, l.Exposed = "http://"+net.JoinHostPort("127.0.0.1", port), true
	case perr == nil:
		l.URL, l.Exposed = "http://"+net.JoinHostPort(ip.String(), port), !ip.IsLoopback()
	default:
		l.URL, l.Exposed = "http://"+net.JoinHostPort(host, port), host != "localhost"
	}
	return l, nil
}

// Server is the web UI over one daemon.
type Server struct {
	d       Service
	ln      *Listener
	log     *slog.Logger
	refresh time.Duration
	url     string
	hosts   hostRule
	auth    auth   // the per-user secret every request but static assets needs
	key     []byte // CSRF token key, never leaves the process
	cop     *http.CrossOriginProtection
	pages   map[string]*template.Template
	handler http.Handler
	notices notices

	life context.Context // background actions run in it
	stop context.CancelFunc
	ops  sync.WaitGroup
}

// New builds the UI for d on ln. token is the user's secret (LoadToken):
// every request but those for static assets must carry it, once as
// ?token= (TokenURL), then as the cookie that sets.
func New(d Service, ln *Listener, token string, opts Options) *Server {
	s := &Server{
		d: d, ln: ln, log: opts.Logger, refresh: opts.Refresh, url: ln.URL, hosts: ln.hosts,
		auth: newAuth(token, ln.hosts.port),
		key:  make([]byte, 32), cop: http.NewCrossOriginProtection(), pages: parsePages(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.refresh <= 0 {
		s.refresh = time.Second
	}
	rand.Read(s.key)
	s.life, s.stop = context.WithCancel(context.Background())
	s.handler = s.guard(s.routes())
	return s
}

// Handler is the UI with its guards, for tests that drive it directly.
func (s *Server) Handler() http.Handler { return s.handler }

// route is one pattern of the UI's mux and what answers it.
type route struct {
	pattern string
	h       http.Handler
}

// routeTable is every route of the UI, in one list so tests can walk it.
func (s *Server) routeTable() []route {
	static, _ := fs.Sub(assets, "assets/static")
	return []route{
		{"GET /static/", http.StripPrefix("/static/", http.FileServerFS(static))},
		{"GET /{$}", http.HandlerFunc(s.index)},
		{"GET /live", http.HandlerFunc(s.live)},
		{"GET /vms/{name}", http.HandlerFunc(s.vmPage)},
		{"GET /vms/{name}/confirm", http.HandlerFunc(s.confirm)},
		{"POST /vms/{name}/{action}", http.HandlerFunc(s.act)},
		{"GET /vms/{name}/sessions/{session}", http.HandlerFunc(s.sessionPage)},
		{"GET /vms/{name}/sessions/{session}/log", http.HandlerFunc(s.sessionLog)},
		{"GET /templates/{name}/confirm", http.HandlerFunc(s.templateConfirm)},
		{"POST /templates/{name}/delete", http.HandlerFunc(s.templateDelete)},
		{"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.fail(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
		})},
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		mux.Handle(rt.pattern, rt.h)
	}
	return mux
}

// Serve answers on the listener until ctx ends, then ends live streams,
// waits for actions in flight and closes.
func (s *Server) Serve(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.life },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.stop() // ends live streams and cancels actions in flight
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := hs.Shutdown(sctx); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = serr
	}
	s.ops.Wait()
	return err
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"index", "vm", "session", "confirm", "tconfirm", "error"} {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(assets,
			"assets/templates/layout.html", "assets/templates/parts.html", "assets/templates/"+name+".html"))
	}
	return pages
}
