package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// Forks make a VM's twin from its memory state.
type Forks interface {
	ForkVM(ctx context.Context, src string, req api.ForkVMRequest, p progress.Func) (api.VM, error)
}

func (s *Server) forkRoutes() {
	s.mux.HandleFunc("POST /v1/vms/{name}/fork", s.forkVM)
}

// forkVM streams progress: saving memory and copying disks take seconds.
func (s *Server) forkVM(w http.ResponseWriter, r *http.Request) {
	var req api.ForkVMRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	src := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.VM, error) {
		return s.d.ForkVM(ctx, src, req, p)
	})
}
