package server

import (
	"net/http"

	"banger/api"
)

// openAPIRoutes serve the API's own description (api/openapi.yaml).
func (s *Server) openAPIRoutes() {
	s.mux.HandleFunc("GET "+api.OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(api.OpenAPI)
	})
}
