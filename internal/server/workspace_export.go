package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// exportWorkspace streams the progress of a workspace export.
func (s *Server) exportWorkspace(w http.ResponseWriter, r *http.Request) {
	var req api.WorkspaceExportRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.WorkspaceExport, error) {
		return s.d.ExportWorkspace(ctx, name, req, p)
	})
}
