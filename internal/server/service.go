package server

import (
	"context"
	"io"
	"time"

	"banger/api"
	"banger/internal/progress"
)

// Service is the daemon as the API serves it, one interface per noun.
type Service interface {
	Daemon
	VMs
	VMUpdates
	Snapshots
	Forks
	Templates
	Images
	Kernels
	Sessions
	Copies
	Forwards
	AuthSyncs
	NetworkPolicies
}

// Daemon is the daemon's own status and event log.
type Daemon interface {
	Status(ctx context.Context) (api.DaemonStatus, error)
	WebLogin(ctx context.Context) (api.WebLogin, error)
	Events(ctx context.Context, subject string, afterID int64, limit int) ([]api.LogEntry, error)
}

// VMs are the VM operations.
type VMs interface {
	VMs(ctx context.Context) ([]api.VM, error)
	VM(ctx context.Context, name string) (api.VM, error)
	CreateVM(ctx context.Context, req api.CreateVMRequest, p progress.Func) (api.VM, error)
	StartVM(ctx context.Context, name string, p progress.Func) (api.VM, error)
	StopVM(ctx context.Context, name string) (api.VM, error)
	RestartVM(ctx context.Context, name string, p progress.Func) (api.VM, error)
	DeleteVM(ctx context.Context, name string, force bool) error
	SetKeepAlive(ctx context.Context, name string, keep bool) (api.VM, error)
	ConsoleLog(ctx context.Context, name string, w io.Writer, follow bool) error
	VMStats(ctx context.Context, name string, history int) (api.VMStats, error)
	Ports(ctx context.Context, vm string) ([]api.Port, error)
	PrepareWorkspace(ctx context.Context, vm string, req api.WorkspacePrepareRequest, p progress.Func) (api.Workspace, error)
	ExportWorkspace(ctx context.Context, vm string, req api.WorkspaceExportRequest, p progress.Func) (api.WorkspaceExport, error)
	Exec(ctx context.Context, vm string, req api.ExecRequest) (api.Bridge, error)
}

// Images are the image operations.
type Images interface {
	Images(ctx context.Context) ([]api.Image, error)
	Image(ctx context.Context, name string) (api.Image, error)
	RegisterImage(ctx context.Context, req api.RegisterImageRequest) (api.Image, error)
	PromoteImage(ctx context.Context, name string, p progress.Func) (api.Image, error)
	DeleteImage(ctx context.Context, name string, force bool) error
	PullImage(ctx context.Context, req api.PullImageRequest, p progress.Func) (api.Image, error)
	BuildImage(ctx context.Context, req api.BuildImageRequest, p progress.Func) (api.ImageBuild, error)
	PruneImages(ctx context.Context) (api.PruneReport, error)
}

// Kernels are the kernel operations.
type Kernels interface {
	Kernels(ctx context.Context) ([]api.Kernel, error)
	Kernel(ctx context.Context, name string) (api.Kernel, error)
	Catalog(ctx context.Context) (api.Catalog, error)
	PullKernel(ctx context.Context, name string, p progress.Func) (api.Kernel, error)
	RemoveKernel(ctx context.Context, name string, force bool) error
	PullKernelRef(ctx context.Context, req api.KernelPullRequest, p progress.Func) (api.Kernel, error)
	PublishKernel(ctx context.Context, name string, req api.KernelPublishRequest, p progress.Func) (api.KernelPublished, error)
	KernelTags(ctx context.Context, repo string, insecure bool) (api.KernelTags, error)
}

// Sessions are the session operations.
type Sessions interface {
	Sessions(ctx context.Context, vm string) ([]api.Session, error)
	Session(ctx context.Context, vm, name string) (api.Session, error)
	StartSession(ctx context.Context, vm string, req api.StartSessionRequest) (api.Session, error)
	SessionLogs(ctx context.Context, vm, name string, req api.SessionLogsRequest, w io.Writer) error
	StopSession(ctx context.Context, vm, name string, timeout time.Duration) (api.Session, error)
	KillSession(ctx context.Context, vm, name, signal string) error
	RemoveSession(ctx context.Context, vm, name string) error
	AttachSession(ctx context.Context, vm, name string, req api.AttachRequest) (api.Bridge, error)
}
