package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"

	"banger/internal/config"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/paths"
	"banger/internal/store"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
)

// The QEMU driver maps templates' memory with a VMM of its own, which a
// daemon killed meanwhile leaves running: the next start reaps it.
var _ vms.Reaper = (*qemu.Driver)(nil)

// driver picks the VMM driver the config names.
func driver(cfg config.Config) vmm.Driver {
	switch cfg.VMM {
	case config.VMMQEMU:
		return qemu.New(qemu.Options{Accel: os.Getenv("BANGER_QEMU_ACCEL")})
	default: // config.VMMFirecracker; the config allows nothing else
		return firecrackerDriver(cfg)
	}
}

// agentBinary finds the guest agent: $BANGER_AGENT, the installed layout
// (../lib/banger/ next to bangerd), or next to bangerd (./build/bin).
func agentBinary() string {
	if p := os.Getenv("BANGER_AGENT"); p != "" {
		return p
	}
	self, err := os.Executable()
	if err != nil {
		return "banger-vsock-agent"
	}
	dir := filepath.Dir(self)
	for _, p := range []string{filepath.Join(dir, "..", "lib", "banger", "banger-vsock-agent"), filepath.Join(dir, "banger-vsock-agent")} {
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p)
		}
	}
	if p, err := exec.LookPath("banger-vsock-agent"); err == nil {
		return p
	}
	return filepath.Join(dir, "..", "lib", "banger", "banger-vsock-agent")
}

// hostNetwork sets up banger's bridge when asked to and running as root
// (a user's daemon relies on 'sudo banger system setup' instead) and
// serves DNS for <vm>.vm.
func hostNetwork(ctx context.Context, cfg config.Config, layout paths.Layout, st *store.Store, log *slog.Logger, setup bool) (*vms.HostNetwork, func(), error) {
	if setup && os.Getuid() == 0 {
		// The record of what was set up stays with this daemon's state,
		// not in the system-wide place 'banger system setup' uses.
		rep, err := network.SetupHost(ctx, cfg, network.WithStateDir(filepath.Join(layout.StateDir, "network")))
		if err != nil {
			return nil, nil, err
		}
		if rep.Changed() {
			log.Info("set up the host network", "report", rep)
		}
	}
	n := vms.NewHostNetwork(cfg, st, os.Getuid())
	// Egress policies need nftables: written directly with CAP_NET_ADMIN,
	// else through the user's egress helper ('system setup' installs it).
	// Without either, policies other than full are refused.
	n.EnforceEgressWith(func() (network.Egress, error) {
		return network.DaemonEgress(network.EgressHelperDir, os.Getuid())
	}, log)
	var upstreams []netip.AddrPort
	for _, a := range cfg.DefaultDNS {
		upstreams = append(upstreams, netip.AddrPortFrom(a, 53))
	}
	dns, err := network.ListenDNS(network.DNSOptions{Addr: network.DNSAddr(cfg), Resolver: n.IPAM(), CIDR: cfg.CIDR, Logger: log,
		Egress: n.EgressDNS(), Upstreams: upstreams})
	if err != nil {
		log.Warn("not serving DNS for .vm names", "err", err)
		return n, n.Close, nil
	}
	return n, func() { dns.Close(); n.Close() }, nil
}
