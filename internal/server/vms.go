package server

import (
	"context"
	"net/http"
	"strconv"

	"banger/api"
	"banger/internal/progress"
)

func (s *Server) vmRoutes() {
	h := s.mux.HandleFunc
	h("GET /v1/vms", s.listVMs)
	h("POST /v1/vms", s.createVM)
	h("GET /v1/vms/{name}", s.showVM)
	h("DELETE /v1/vms/{name}", s.deleteVM)
	h("POST /v1/vms/{name}/start", s.startVM)
	h("POST /v1/vms/{name}/stop", s.stopVM)
	h("POST /v1/vms/{name}/restart", s.restartVM)
	h("GET /v1/vms/{name}/logs", s.vmLogs)
	h("GET /v1/vms/{name}/ports", s.vmPorts)
}

func (s *Server) listVMs(w http.ResponseWriter, r *http.Request) {
	vms, err := s.d.VMs(r.Context())
	reply(w, vms, err)
}

func (s *Server) showVM(w http.ResponseWriter, r *http.Request) {
	vm, err := s.d.VM(r.Context(), r.PathValue("name"))
	reply(w, vm, err)
}

func (s *Server) createVM(w http.ResponseWriter, r *http.Request) {
	var req api.CreateVMRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	stream(w, r, func(ctx context.Context, p progress.Func) (api.VM, error) {
		return s.d.CreateVM(ctx, req, p)
	})
}

func (s *Server) deleteVM(w http.ResponseWriter, r *http.Request) {
	err := s.d.DeleteVM(r.Context(), r.PathValue("name"), force(r))
	reply(w, struct{}{}, err)
}

func (s *Server) startVM(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cold := cold(r)
	stream(w, r, func(ctx context.Context, p progress.Func) (api.VM, error) {
		if cold {
			return s.d.StartVMCold(ctx, name, p)
		}
		return s.d.StartVM(ctx, name, p)
	})
}

func (s *Server) restartVM(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	stream(w, r, func(ctx context.Context, p progress.Func) (api.VM, error) {
		return s.d.RestartVM(ctx, name, p)
	})
}

func (s *Server) stopVM(w http.ResponseWriter, r *http.Request) {
	vm, err := s.d.StopVM(r.Context(), r.PathValue("name"))
	reply(w, vm, err)
}

// vmLogs streams the console log as plain text.
func (s *Server) vmLogs(w http.ResponseWriter, r *http.Request) {
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	name := r.PathValue("name")
	if _, err := s.d.VM(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := flushWriter{w: w, rc: http.NewResponseController(w)}
	if err := s.d.ConsoleLog(r.Context(), name, fw, follow); err != nil {
		s.log.Warn("streaming console log", "vm", name, "err", err)
	}
}

func (s *Server) vmPorts(w http.ResponseWriter, r *http.Request) {
	ports, err := s.d.Ports(r.Context(), r.PathValue("name"))
	reply(w, ports, err)
}

type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flushWriter) Flush()                      { f.rc.Flush() }
