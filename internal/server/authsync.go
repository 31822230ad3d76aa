package server

import (
	"context"
	"net/http"

	"banger/api"
)

// AuthSyncs copy the host's coding-agent credentials into running VMs.
type AuthSyncs interface {
	AuthSync(ctx context.Context, vm string, req api.AuthSyncRequest) (api.AuthSync, error)
}

func (s *Server) authSyncRoutes() {
	s.mux.HandleFunc("POST /v1/vms/{name}/auth-sync", s.authSync)
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
