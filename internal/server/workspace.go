package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// prepareWorkspace streams the progress of a workspace copy; a client that
// goes away (Ctrl-C) cancels it.
func (s *Server) prepareWorkspace(w http.ResponseWriter, r *http.Request) {
	var req api.WorkspacePrepareRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Workspace, error) {
		return s.d.PrepareWorkspace(ctx, name, req, p)
	})
}
