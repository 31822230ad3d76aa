package server

import (
	"context"
	"net/http"
	"strconv"

	"banger/api"
	"banger/internal/progress"
)

// Snapshots are pause, resume, suspend and the cold start that discards
// a suspended VM's state.
type Snapshots interface {
	PauseVM(ctx context.Context, name string) (api.VM, error)
	ResumeVM(ctx context.Context, name string) (api.VM, error)
	SuspendVM(ctx context.Context, name string, p progress.Func) (api.VM, error)
	StartVMCold(ctx context.Context, name string, p progress.Func) (api.VM, error)
}

func (s *Server) snapshotRoutes() {
	h := s.mux.HandleFunc
	h("POST /v1/vms/{name}/pause", s.pauseVM)
	h("POST /v1/vms/{name}/resume", s.resumeVM)
	h("POST /v1/vms/{name}/suspend", s.suspendVM)
}

func (s *Server) pauseVM(w http.ResponseWriter, r *http.Request) {
	vm, err := s.d.PauseVM(r.Context(), r.PathValue("name"))
	reply(w, vm, err)
}

func (s *Server) resumeVM(w http.ResponseWriter, r *http.Request) {
	vm, err := s.d.ResumeVM(r.Context(), r.PathValue("name"))
	reply(w, vm, err)
}

// suspendVM streams progress: saving memory takes seconds.
func (s *Server) suspendVM(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.VM, error) {
		return s.d.SuspendVM(ctx, name, p)
	})
}

// cold reports whether a start asks to discard a saved state (?cold=true).
func cold(r *http.Request) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get("cold"))
	return v
}
