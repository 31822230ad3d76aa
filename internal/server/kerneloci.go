package server

import (
	"context"
	"net/http"
	"strconv"

	"banger/api"
	"banger/internal/progress"
)

// kernelOCIRoutes serve kernels kept in OCI registries.
func (s *Server) kernelOCIRoutes() {
	s.mux.HandleFunc("POST /v1/kernels/pull", s.pullKernelRef)
	s.mux.HandleFunc("POST /v1/kernels/{name}/publish", s.publishKernel)
	s.mux.HandleFunc("GET /v1/kernels/tags", s.kernelTags)
}

func (s *Server) pullKernelRef(w http.ResponseWriter, r *http.Request) {
	var req api.KernelPullRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Kernel, error) {
		return s.d.PullKernelRef(ctx, req, p)
	})
}

func (s *Server) publishKernel(w http.ResponseWriter, r *http.Request) {
	var req api.KernelPublishRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.KernelPublished, error) {
		return s.d.PublishKernel(ctx, name, req, p)
	})
}

func (s *Server) kernelTags(w http.ResponseWriter, r *http.Request) {
	insecure, _ := strconv.ParseBool(r.URL.Query().Get("insecure"))
	tags, err := s.d.KernelTags(r.Context(), r.URL.Query().Get("repo"), insecure)
	reply(w, tags, err)
}
