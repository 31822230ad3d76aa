// Package doctor checks that this host can run banger VMs and says, for
// every check that does not pass, the exact command that fixes it.
package doctor

import (
	"context"
	"os"
	"os/exec"

	"banger/internal/config"
	"banger/internal/network"
	"banger/internal/paths"
)

// Status is a check's verdict.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Env is what the checks look at. Zero-valued hooks use the real host.
type Env struct {
	Config    config.Config
	ConfigErr error // the config failed to load; Config holds defaults
	Layout    paths.Layout
	// DaemonStatus reports whether the daemon answers (nil = running).
	DaemonStatus func(ctx context.Context) error
	// LookPath finds executables; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// KVMDevice is the KVM device path; empty means /dev/kvm.
	KVMDevice string
	// Network reports the host network's pieces; nil means
	// network.System.Status for the config, owned by the current user.
	Network func(ctx context.Context, cfg config.Config) network.Status
	// ProbeDNS asks a DNS server (host:port) for banger's vm. zone; nil
	// means network.ProbeDNS.
	ProbeDNS func(ctx context.Context, server string) error
	// Resolvers lists the host's DNS servers (host:port); nil reads
	// /etc/resolv.conf.
	Resolvers func() []string
	// DefaultImageKernel returns the kernel path of the default image
	// (config default_image_name), "" when there is no such image; nil
	// looks for it among the managed images' manifests.
	DefaultImageKernel func(ctx context.Context) (string, error)
	// FreeSpace returns the bytes available to unprivileged users on the
	// filesystem holding dir; nil means statfs(2).
	FreeSpace func(dir string) (int64, error)

	netStatus *network.Status // Network's answer, asked once per Run
	defKernel *kernelLookup   // the default image's kernel, looked up once per Run
}

// Check is one named check.
type Check struct {
	Name string
	Run  func(ctx context.Context, e *Env) Result
}

// Checks returns the host checks in the order they are shown.
func Checks() []Check {
	return []Check{
		{"config", checkConfig},
		{"kvm", checkKVM},
		{"vmm", checkVMM},
		{"kernel", checkKernel},
		{"e2fsprogs", checkE2fsprogs},
		{"default-image", checkDefaultImageTools},
		{"tun", checkTun},
		{"bridge", networkPiece("bridge")},
		{"taps", networkPiece("taps")},
		{"ip-forward", networkPiece("ip-forward")},
		{"nat", networkPiece("nat")},
		{"boot-unit", checkBootUnit},
		{"egress", checkEgressHelper},
		{"vm-dns", checkVMDNS},
		{"disk", checkDisk},
		{"ssh-key", checkSSHKey},
		{"dirs", checkDirModes},
		{"daemon", checkDaemon},
	}
}

// Run runs every check.
func Run(ctx context.Context, e Env) []Result {
	if e.LookPath == nil {
		e.LookPath = exec.LookPath
	}
	if e.KVMDevice == "" {
		e.KVMDevice = "/dev/kvm"
	}
	if e.Network == nil {
		e.Network = func(ctx context.Context, cfg config.Config) network.Status {
			return network.NewSystem().Status(ctx, network.SpecFromConfig(cfg, os.Getuid(), os.Getgid()))
		}
	}
	if e.ProbeDNS == nil {
		e.ProbeDNS = network.ProbeDNS
	}
	if e.Resolvers == nil {
		e.Resolvers = resolvConfServers
	}
	if e.FreeSpace == nil {
		e.FreeSpace = statfsFree
	}
	var out []Result
	for _, c := range Checks() {
		r := c.Run(ctx, &e)
		r.Name = c.Name
		out = append(out, r)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

func pass(detail string) Result { return Result{Status: Pass, Detail: detail} }

func warn(detail, fix string) Result { return Result{Status: Warn, Detail: detail, Fix: fix} }

func fail(detail, fix string) Result { return Result{Status: Fail, Detail: detail, Fix: fix} }
