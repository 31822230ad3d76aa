// Package network is banger's host networking: the guest bridge, a pool of
// TAP devices owned by the daemon's user, address leases, NAT, and a DNS
// server answering <vm>.vm.
//
// Two halves with different privileges:
//
//   - System (setup.go) creates, checks and removes what needs root — the
//     bridge, the TAPs, banger's nftables table, IPv4 forwarding, routing of
//     *.vm lookups through systemd-resolved and a boot unit. 'sudo banger
//     system setup' runs it once; a daemon running as root may call
//     SetupHost itself.
//   - The daemon, unprivileged, uses what System made: IPAM hands out
//     addresses, Pool hands out TAPs, DNSServer answers names, KernelArgs
//     tells the guest its address, CheckConfigChange guards the lease table.
//   - Egress (egress.go) keeps each VM's network policy in banger's
//     egress tables, and binds each TAP to its VM's address. Writing them
//     needs CAP_NET_ADMIN: a daemon running as root uses HostEgress; an
//     unprivileged one uses HelperEgress, the client of the egress helper
//     (egresshelper*.go), a root process 'system setup' installs that
//     checks every request against the user's setup record
//     (DaemonEgress picks).
//
// Every host effect sits behind a narrow interface (Links, Firewall,
// Sysctl, Resolved, Units) so the orchestration is unit-tested with fakes;
// the real implementations are tested as root inside network namespaces the
// tests create and remove.
//
// A worked example of what the daemon does at start and for one VM:
//
//	if err := network.CheckConfigChange(ctx, leases, cfg, running); err != nil {
//		return err // errdefs.Conflict: settings changed under running VMs
//	}
//	ipam := network.NewIPAM(leases, cfg)
//	pool := network.NewPool(network.PoolOptions{Config: cfg, Store: leases, UID: os.Getuid()})
//	dns, err := network.ListenDNS(network.DNSOptions{
//		Addr: network.DNSAddr(cfg), Resolver: ipam, CIDR: cfg.CIDR})
//	...
//	lease, err := ipam.Allocate(ctx, "web")  // 172.16.0.2, 02:ba:ac:10:00:02
//	tap, err := pool.Acquire(ctx, "web")     // "banger0-tap0"
//	args := network.KernelArgs(lease.Addr, cfg)
//	// boot the VMM with tap, lease.MAC and args; on stop: pool.Release;
//	// on delete: ipam.Release.
package network
