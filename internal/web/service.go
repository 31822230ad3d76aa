package web

import (
	"context"
	"io"

	"banger/api"
	"banger/internal/progress"
)

// Service is what the web UI needs of the daemon: reads of VMs, images,
// kernels, templates, sessions and events, the three VM actions and
// the template delete.
type Service interface {
	VMs(ctx context.Context) ([]api.VM, error)
	VM(ctx context.Context, name string) (api.VM, error)
	VMStats(ctx context.Context, name string, history int) (api.VMStats, error)
	StartVM(ctx context.Context, name string, p progress.Func) (api.VM, error)
	StopVM(ctx context.Context, name string) (api.VM, error)
	DeleteVM(ctx context.Context, name string, force bool) error
	Images(ctx context.Context) ([]api.Image, error)
	Kernels(ctx context.Context) ([]api.Kernel, error)
	Sessions(ctx context.Context, vm string) ([]api.Session, error)
	SessionLogs(ctx context.Context, vm, name string, req api.SessionLogsRequest, w io.Writer) error
	Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error)
	Templates
}
