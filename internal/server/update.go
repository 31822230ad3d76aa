package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"banger/api"
	"banger/api/errdefs"
)

// VMUpdates changes a VM's settings.
type VMUpdates interface {
	// UpdateVM applies every change in req or none of them: the whole
	// request is checked before anything changes.
	UpdateVM(ctx context.Context, name string, req api.UpdateVMRequest) (api.VM, error)
}

// updateVM answers PATCH /v1/vms/{name} with one daemon call, so that a
// request changing the network policy and keep_alive never applies one
// and refuses the other.
func (s *Server) updateVM(w http.ResponseWriter, r *http.Request) {
	var req api.UpdateVMRequest
	if err := decodeUpdate(r, &req); err != nil {
		writeError(w, err)
		return
	}
	vm, err := s.d.UpdateVM(r.Context(), r.PathValue("name"), req)
	reply(w, vm, err)
}

// decodeUpdate decodes the body, naming a field of the wrong type and
// what it takes.
func decodeUpdate(r *http.Request, req *api.UpdateVMRequest) error {
	err := decode(r, req)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return err
	}
	if te.Field == "keep_alive" {
		return errdefs.Invalid("keep_alive is a JSON %s; send true or false (or leave it out to keep the VM's setting); nothing was changed", te.Value)
	}
	return errdefs.Invalid("%s is a JSON %s; it takes a %s; nothing was changed", te.Field, te.Value, te.Type)
}
