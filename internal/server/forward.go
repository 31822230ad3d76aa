package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
)

// Forwards are the port forwarding operations.
type Forwards interface {
	Forward(ctx context.Context, vm string, req api.ForwardRequest, started func([]api.Forward)) ([]api.Forward, error)
	Forwards(vm string) []api.Forward
	StopForwards(ctx context.Context, vm string, hostPorts []int) ([]api.Forward, error)
}

func (s *Server) forwardRoutes() {
	h := s.mux.HandleFunc
	h("GET /v1/vms/{name}/forwards", s.listForwards)
	h("POST /v1/vms/{name}/forwards", s.startForwards)
	h("DELETE /v1/vms/{name}/forwards", s.stopForwards)
}

func (s *Server) listForwards(w http.ResponseWriter, r *http.Request) {
	if _, err := s.d.VM(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	reply(w, s.d.Forwards(r.PathValue("name")), nil)
}

// startForwards answers at once for detached forwards; otherwise it
// streams one event per forward once they listen and holds them until the
// client goes away (Ctrl-C) or they end (the VM stopped).
func (s *Server) startForwards(w http.ResponseWriter, r *http.Request) {
	var req api.ForwardRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	vm := r.PathValue("name")
	if req.Detach {
		fs, err := s.d.Forward(r.Context(), vm, req, nil)
		reply(w, fs, err)
		return
	}
	stream(w, r, func(ctx context.Context, p progress.Func) ([]api.Forward, error) {
		return s.d.Forward(ctx, vm, req, func(fs []api.Forward) {
			for _, f := range fs {
				p(api.Event{Time: time.Now(), Step: "forward", Item: f.HostAddr,
					Message: fmt.Sprintf("forwarding %s to port %d in vm %s", f.HostAddr, f.GuestPort, vm)})
			}
		})
	})
}

// stopForwards stops the forwards on ?port=N (repeatable), or all of the VM's.
func (s *Server) stopForwards(w http.ResponseWriter, r *http.Request) {
	var ports []int
	for _, v := range r.URL.Query()["port"] {
		p, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, errdefs.Invalid("port %q is not a number", v))
			return
		}
		ports = append(ports, p)
	}
	fs, err := s.d.StopForwards(r.Context(), r.PathValue("name"), ports)
	reply(w, fs, err)
}
