package server

import (
	"context"
	"net/http"
	"strconv"

	"banger/api"
	"banger/internal/progress"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.d.Status(r.Context())
	reply(w, st, err)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusAccepted, struct{}{})
	go s.shutdown()
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	evs, err := s.d.Events(r.Context(), q.Get("subject"), after, limit)
	reply(w, evs, err)
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	ims, err := s.d.Images(r.Context())
	reply(w, ims, err)
}

func (s *Server) showImage(w http.ResponseWriter, r *http.Request) {
	im, err := s.d.Image(r.Context(), r.PathValue("name"))
	reply(w, im, err)
}

func (s *Server) registerImage(w http.ResponseWriter, r *http.Request) {
	var req api.RegisterImageRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	im, err := s.d.RegisterImage(r.Context(), req)
	reply(w, im, err)
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	err := s.d.DeleteImage(r.Context(), r.PathValue("name"), force(r))
	reply(w, struct{}{}, err)
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	rep, err := s.d.PruneImages(r.Context())
	reply(w, rep, err)
}

func (s *Server) promoteImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Image, error) {
		return s.d.PromoteImage(ctx, name, p)
	})
}

func (s *Server) listKernels(w http.ResponseWriter, r *http.Request) {
	ks, err := s.d.Kernels(r.Context())
	reply(w, ks, err)
}

func (s *Server) showKernel(w http.ResponseWriter, r *http.Request) {
	k, err := s.d.Kernel(r.Context(), r.PathValue("name"))
	reply(w, k, err)
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	c, err := s.d.Catalog(r.Context())
	reply(w, c, err)
}

func (s *Server) pullKernel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Kernel, error) {
		return s.d.PullKernel(ctx, name, p)
	})
}

func (s *Server) removeKernel(w http.ResponseWriter, r *http.Request) {
	err := s.d.RemoveKernel(r.Context(), r.PathValue("name"), force(r))
	reply(w, struct{}{}, err)
}

func force(r *http.Request) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	return v
}
