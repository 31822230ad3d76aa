// Package server exposes the daemon service as HTTP/JSON on a unix
// socket. Error kinds map to HTTP status here and nowhere else.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
)

// Server serves the API for one daemon.
type Server struct {
	d        Service
	log      *slog.Logger
	mux      *routeMux
	shutdown func()

	drain, unwind time.Duration
	calls         calls
}

// New builds the routes. shutdown is called when a client asks the daemon
// to stop.
func New(d Service, log *slog.Logger, shutdown func(), opts ...Option) *Server {
	s := &Server{d: d, log: log, mux: newRouteMux(), shutdown: shutdown, drain: DefaultDrain, unwind: DefaultUnwind}
	for _, o := range opts {
		o(s)
	}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler. Every call is tracked until its
// handler returns; once the server has stopped, calls are refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	end, ok := s.calls.start(r.Method + " " + r.URL.Path)
	if !ok {
		writeError(w, errdefs.Unavailable("bangerd is stopping; run the command again to start it"))
		return
	}
	defer end()
	s.mux.ServeHTTP(w, r)
}

// Serve answers on l until ctx ends, then drains in-flight calls for up
// to the drain time (WithDrain, ten seconds by default).
//
// Calls still running after the drain have their contexts cancelled, and
// Serve waits for them to return (undoing what they had begun), so the
// daemon closes its services only under finished calls. A call that has
// not returned after the unwind time (WithUnwind, 30 s) is logged by
// route and left behind: Serve returns (a service's Close still waits for
// any claim such a call holds).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	base, cancelCalls := context.WithCancel(context.Background())
	defer cancelCalls()
	hs := &http.Server{
		Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	var err error // the listener's failure, when that ends serving
	select {
	case err = <-errc:
	case <-ctx.Done():
		defer func() { <-errc }() // http.ErrServerClosed, once Shutdown closed the listener
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.drain)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		s.log.Warn("cancelling the API calls still running after the drain", "drain", s.drain, "calls", s.calls.list())
	}
	cancelCalls()
	if left := s.calls.close(s.unwind); len(left) > 0 {
		s.log.Error("API calls still running after they were cancelled; stopping without them", "unwind", s.unwind, "calls", left)
		return errors.Join(err, fmt.Errorf("stopping the API server: %d call(s) did not return %s after they were cancelled: %s",
			len(left), s.unwind, strings.Join(left, ", ")))
	}
	return err
}

func (s *Server) routes() {
	h := s.mux.HandleFunc
	h("GET /v1/daemon", s.status)
	h("GET /v1/daemon/web-login", func(w http.ResponseWriter, r *http.Request) {
		login, err := s.d.WebLogin(r.Context())
		reply(w, login, err)
	})
	h("POST /v1/daemon/shutdown", s.stop)
	h("GET /v1/events", s.events)
	h("GET /v1/images", s.listImages)
	h("POST /v1/images", s.registerImage)
	h("POST /v1/images/pull", s.pullImage)
	h("POST /v1/images/build", s.buildImage)
	h("POST /v1/images/prune", s.pruneImages)
	h("GET /v1/images/{name}", s.showImage)
	h("DELETE /v1/images/{name}", s.deleteImage)
	h("POST /v1/images/{name}/promote", s.promoteImage)
	s.kernelOCIRoutes()
	h("GET /v1/kernels", s.listKernels)
	h("GET /v1/kernels/catalog", s.catalog)
	h("GET /v1/kernels/{name}", s.showKernel)
	h("POST /v1/kernels/{name}/pull", s.pullKernel)
	h("DELETE /v1/kernels/{name}", s.removeKernel)
	s.vmRoutes()
	s.forwardRoutes()
	s.snapshotRoutes()
	s.forkRoutes()
	s.templateRoutes()
	s.workRoutes()
	s.statsRoutes()
	s.copyRoutes()
	s.openAPIRoutes()
	s.authSyncRoutes()
	h("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.NotFound("no API route %s %s; is the CLI newer than the daemon? restart it with 'banger daemon stop'", r.Method, r.URL.Path))
	})
}

// status maps an error kind to its HTTP status.
func status(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		return http.StatusNotFound
	case errdefs.KindConflict:
		return http.StatusConflict
	case errdefs.KindInvalid:
		return http.StatusBadRequest
	case errdefs.KindUnsupported:
		return http.StatusNotImplemented
	case errdefs.KindUnavailable:
		return http.StatusServiceUnavailable
	case errdefs.KindCanceled:
		return 499 // client closed request
	default:
		return http.StatusInternalServerError
	}
}

func apiError(err error) *api.Error {
	return &api.Error{Kind: errdefs.KindOf(err), Message: err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, status(err), apiError(err))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// reply writes v, or the error.
func reply[T any](w http.ResponseWriter, v T, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// decode reads the request body as exactly one JSON value: unknown
// fields and anything after the value but white space are refused, so a
// body means what it says and nothing rides along.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errdefs.Invalid("decoding request body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errdefs.Invalid("decoding request body: data after the JSON value; send exactly one JSON object")
	}
	return nil
}

// stream runs op, sending its progress events as NDJSON frames and then
// its result or error. The request context is op's context, so a client
// that disconnects (Ctrl-C) cancels the operation.
func stream[T any](w http.ResponseWriter, r *http.Request, op func(ctx context.Context, p progress.Func) (T, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	var mu sync.Mutex
	send := func(f api.Frame) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(f)
		rc.Flush()
	}
	send(api.Frame{Event: &api.Event{Time: time.Now(), Step: "start"}})
	res, err := op(r.Context(), func(ev api.Event) { send(api.Frame{Event: &ev}) })
	if err != nil {
		send(api.Frame{Error: apiError(err)})
		return
	}
	send(api.Frame{Result: res})
}

// peerUID returns the uid of the process on the other end of a unix
// socket connection.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a unix socket connection: %T", c)
	}
	return unixPeerUID(uc)
}

// Listener wraps a unix listener and drops connections from any user but
// the daemon's own, before a single byte is read.
type Listener struct {
	net.Listener
	Log *slog.Logger
}

// Accept returns the next connection from our own uid.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && uid == os.Getuid() {
			return c, nil
		}
		l.Log.Warn("refused API connection from another user", "peer_uid", uid, "err", err)
		c.Close()
	}
}
