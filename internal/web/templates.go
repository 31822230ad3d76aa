package web

import (
	"context"
	"fmt"
	"net/http"

	"banger/api"
)

// Templates (docs/snapshots.md, "Templates"): the dashboard lists them
// under the images with their sizes, and deletes one after a
// confirmation page, as it does VMs.

// Templates is what the UI needs of the daemon for templates.
type Templates interface {
	Templates(ctx context.Context) ([]api.Template, error)
	Template(ctx context.Context, name string) (api.Template, error)
	DeleteTemplate(ctx context.Context, name string) error
}

// templateConfirm asks before a template delete.
func (s *Server) templateConfirm(w http.ResponseWriter, r *http.Request) {
	t, err := s.d.Template(r.Context(), r.PathValue("name"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "tconfirm", page{Title: "delete template " + t.Name, Template: &t})
}

// templateDelete deletes a confirmed template in the background and
// sends the browser back to the dashboard; the outcome is a notice.
func (s *Server) templateDelete(w http.ResponseWriter, r *http.Request) {
	t, err := s.d.Template(r.Context(), r.PathValue("name"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	name := t.Name
	s.notices.add("info", fmt.Sprintf("delete of template %s requested", name))
	s.ops.Go(func() {
		ctx, cancel := context.WithTimeout(s.life, actionTimeout)
		defer cancel()
		if err := s.d.DeleteTemplate(ctx, name); err != nil {
			s.log.Warn("web ui template delete failed", "template", name, "err", err)
			s.notices.add("error", fmt.Sprintf("delete of template %s failed: %v", name, err))
			return
		}
		s.notices.add("info", fmt.Sprintf("delete of template %s done", name))
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
