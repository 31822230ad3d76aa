package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// pullImage streams the progress of an OCI pull; a client that goes away
// (Ctrl-C) cancels it.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	var req api.PullImageRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Image, error) {
		return s.d.PullImage(ctx, req, p)
	})
}
