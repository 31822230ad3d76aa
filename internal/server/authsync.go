package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/api/errdefs"
)

// AuthSyncs copy the host's coding-agent credentials into running VMs.
type AuthSyncs interface {
	AuthSync(ctx context.Context, vm string, req api.AuthSyncRequest) (api.AuthSync, error)
	SetAuthSync(ctx context.Context, vm string, tools []string) (api.VM, error)
}

func (s *Server) authSyncRoutes() {
	s.mux.HandleFunc("POST /v1/vms/{name}/auth-sync", s.authSync)
	s.mux.HandleFunc("PUT /v1/vms/{name}/auth-sync", s.setAuthSync)
}

func (s *Server) setAuthSync(w http.ResponseWriter, r *http.Request) {
	var req api.SetAuthSyncRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Tools == nil {
		writeError(w, errdefs.Invalid(`set "tools" to the coding agents whose credentials the VM receives at each boot, [] for none`))
		return
	}
	vm, err := s.d.SetAuthSync(r.Context(), r.PathValue("name"), *req.Tools)
	reply(w, vm, err)
}

func (s *Server) authSync(w http.ResponseWriter, r *http.Request) {
	var req api.AuthSyncRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.d.AuthSync(r.Context(), r.PathValue("name"), req)
	reply(w, res, err)
}
