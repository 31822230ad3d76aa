package server

import (
	"net/http"
	"strconv"

	"banger/api/errdefs"
)

func (s *Server) statsRoutes() {
	h := s.mux.HandleFunc
	h("GET /v1/vms/{name}/stats", s.vmStats)
	h("PATCH /v1/vms/{name}", s.updateVM)
}

// vmStats answers with the newest sample and, with ?history=N, up to N
// earlier ones (history=all: every sample kept).
func (s *Server) vmStats(w http.ResponseWriter, r *http.Request) {
	history := 0
	switch q := r.URL.Query().Get("history"); q {
	case "":
	case "all":
		history = -1
	default:
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			writeError(w, errdefs.Invalid("history=%q is not a count; use a number of samples or all", q))
			return
		}
		history = n
	}
	st, err := s.d.VMStats(r.Context(), r.PathValue("name"), history)
	reply(w, st, err)
}
