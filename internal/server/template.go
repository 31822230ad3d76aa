package server

import (
	"context"
	"net/http"

	"banger/api"
	"banger/internal/progress"
)

// Templates are a VM's state kept to start VMs of its image warm.
type Templates interface {
	Templates(ctx context.Context) ([]api.Template, error)
	Template(ctx context.Context, name string) (api.Template, error)
	SnapshotVM(ctx context.Context, vm, name string, p progress.Func) (api.Template, error)
	DeleteTemplate(ctx context.Context, name string) error
}

func (s *Server) templateRoutes() {
	h := s.mux.HandleFunc
	h("GET /v1/templates", func(w http.ResponseWriter, r *http.Request) {
		ts, err := s.d.Templates(r.Context())
		reply(w, ts, err)
	})
	h("GET /v1/templates/{name}", func(w http.ResponseWriter, r *http.Request) {
		t, err := s.d.Template(r.Context(), r.PathValue("name"))
		reply(w, t, err)
	})
	h("DELETE /v1/templates/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, s.d.DeleteTemplate(r.Context(), r.PathValue("name")))
	})
	h("POST /v1/vms/{name}/template", s.snapshotVM)
}

// snapshotVM streams progress: saving memory and copying disks take
// seconds.
func (s *Server) snapshotVM(w http.ResponseWriter, r *http.Request) {
	var req api.SnapshotImageRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	vm := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.Template, error) {
		return s.d.SnapshotVM(ctx, vm, req.Name, p)
	})
}
