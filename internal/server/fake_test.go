package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
)

// fakeService answers the few calls a handler test needs; any other call
// panics on the nil embedded interface, which fails the test loudly.
type fakeService struct {
	Service
	vms map[string]api.VM
}

func (f *fakeService) VMs(context.Context) ([]api.VM, error) {
	out := make([]api.VM, 0, len(f.vms))
	for _, v := range f.vms {
		out = append(out, v)
	}
	return out, nil
}

func (f *fakeService) VM(_ context.Context, name string) (api.VM, error) {
	v, ok := f.vms[name]
	if !ok {
		return api.VM{}, errdefs.NotFound("vm %q not found", name)
	}
	return v, nil
}

func (f *fakeService) DeleteVM(_ context.Context, name string, force bool) error {
	if _, ok := f.vms[name]; !ok {
		return errdefs.NotFound("vm %q not found", name)
	}
	if !force && f.vms[name].State == api.VMRunning {
		return errdefs.Conflict("vm %q is running", name)
	}
	delete(f.vms, name)
	return nil
}

// The routes map the service's error kinds to statuses and back through
// the client, with no daemon behind them.
func TestRoutesAgainstAFakeService(t *testing.T) {
	f := &fakeService{vms: map[string]api.VM{
		"dev": {Name: "dev", State: api.VMRunning, IP: "172.16.0.2"},
		"old": {Name: "old", State: api.VMStopped},
	}}
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(f, slog.New(slog.DiscardHandler), cancel).Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	cl := client.New(sock)

	if vms, err := cl.VMs(ctx); err != nil || len(vms) != 2 {
		t.Fatalf("VMs = %+v, %v", vms, err)
	}
	if v, err := cl.VM(ctx, "dev"); err != nil || v.IP != "172.16.0.2" {
		t.Errorf("VM(dev) = %+v, %v", v, err)
	}
	if _, err := cl.VM(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("VM(nope): %v, want not found", err)
	}
	if err := cl.DeleteVM(ctx, "dev", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("deleting a running vm: %v, want a conflict", err)
	}
	if err := cl.DeleteVM(ctx, "old", false); err != nil {
		t.Errorf("deleting a stopped vm: %v", err)
	}
}
