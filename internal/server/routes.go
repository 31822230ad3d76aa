package server

import (
	"net/http"
	"slices"
)

// routeMux is the server's ServeMux, remembering every pattern it is
// given so the route table can be listed (Routes) and compared with the
// API document.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// HandleFunc registers h for pattern and records the pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// Handle registers h for pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// Routes lists the API routes the server answers, as "METHOD /path"
// patterns in the mux's syntax ("GET /v1/vms/{name}"), sorted. The
// catch-all that answers unknown paths is not a route.
func (s *Server) Routes() []string {
	var out []string
	for _, p := range s.mux.patterns {
		if p != "/" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
