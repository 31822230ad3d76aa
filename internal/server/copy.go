package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"banger/api"
)

// Copies are the copy operations between the host and a guest.
type Copies interface {
	CopyOut(ctx context.Context, vm, src string, w io.Writer) (api.CopyResult, error)
	CopyIn(ctx context.Context, vm, dir string, r io.Reader) (api.CopyResult, error)
	StatPath(ctx context.Context, vm, p string) (api.PathStat, error)
}

// copyRoutes stream tar archives in and out of guests (api/copy.go).
func (s *Server) copyRoutes() {
	h := s.mux.HandleFunc
	h("GET /v1/vms/{name}/files", s.copyOut)
	h("PUT /v1/vms/{name}/files", s.copyIn)
	h("GET /v1/vms/{name}/files/stat", s.statPath)
}

// copyOut streams the tar as the agent sends it. An error before the
// first byte is an ordinary error reply; after it, the status line is
// gone, so the outcome goes in trailers the client checks.
func (s *Server) copyOut(w http.ResponseWriter, r *http.Request) {
	vm := r.PathValue("name")
	w.Header().Set("Trailer", api.TrailerCopyError+", "+api.TrailerCopyEntries+", "+api.TrailerCopyBytes)
	sw := &startedWriter{w: w}
	res, err := s.d.CopyOut(r.Context(), vm, r.URL.Query().Get("path"), sw)
	if err != nil && !sw.started {
		w.Header().Del("Trailer")
		writeError(w, err)
		return
	}
	if !sw.started {
		sw.start()
	}
	if err != nil {
		b, _ := json.Marshal(apiError(err))
		w.Header().Set(api.TrailerCopyError, string(b))
		s.log.Warn("copying out of a vm", "vm", vm, "err", err)
		return
	}
	w.Header().Set(api.TrailerCopyEntries, strconv.Itoa(res.Entries))
	w.Header().Set(api.TrailerCopyBytes, strconv.FormatInt(res.Bytes, 10))
}

// startedWriter sends the status line with the first byte.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (sw *startedWriter) start() {
	sw.started = true
	sw.w.Header().Set("Content-Type", "application/x-tar")
	sw.w.Header().Set("X-Content-Type-Options", "nosniff")
	sw.w.WriteHeader(http.StatusOK)
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	if !sw.started {
		sw.start()
	}
	return sw.w.Write(p)
}

func (s *Server) copyIn(w http.ResponseWriter, r *http.Request) {
	res, err := s.d.CopyIn(r.Context(), r.PathValue("name"), r.URL.Query().Get("path"), r.Body)
	reply(w, res, err)
}

func (s *Server) statPath(w http.ResponseWriter, r *http.Request) {
	st, err := s.d.StatPath(r.Context(), r.PathValue("name"), r.URL.Query().Get("path"))
	reply(w, st, err)
}
