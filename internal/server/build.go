package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// buildImage streams the progress of an image build; a client that goes
// away (Ctrl-C) cancels it.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) {
	var req api.BuildImageRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	stream(w, r, func(ctx context.Context, p progress.Func) (api.ImageBuild, error) {
		return s.d.BuildImage(ctx, req, p)
	})
}
