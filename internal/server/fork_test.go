package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// TestForkRoute drives the fork route through the typed client over the
// real socket: the request reaches the daemon and its refusals come back
// with their kinds (the daemon tests cover forks themselves; this world
// has no network, which a fork needs).
func TestForkRoute(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	if _, err := cl.ForkVM(ctx, "dev", api.ForkVMRequest{}, nil); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "--name") {
		t.Errorf("fork without a name: %v; want invalid, naming --name", err)
	}
	if _, err := cl.ForkVM(ctx, "dev", api.ForkVMRequest{Name: "twin"}, nil); !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "system setup") {
		t.Errorf("fork without a network: %v; want unsupported, naming 'system setup'", err)
	}
}
