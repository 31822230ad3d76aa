package network

import (
	"fmt"
	"net/netip"
	"strings"

	"banger/internal/config"
)

// Kernel command line keys the guest agent reads to configure eth0
// (Debian's kernels lack ip=, and the agent may be PID 1).
const (
	ArgIP  = "banger.ip"  // address with prefix length: 172.16.0.2/24
	ArgGW  = "banger.gw"  // default gateway (the bridge address): 172.16.0.1
	ArgDNS = "banger.dns" // resolvers, comma-separated: 1.1.1.1,8.8.8.8
)

// KernelArgs returns the kernel command line arguments that tell a guest
// holding addr its network, from cfg's cidr, bridge_ip and default_dns:
//
//	banger.ip=172.16.0.2/24 banger.gw=172.16.0.1 banger.dns=1.1.1.1
func KernelArgs(addr netip.Addr, cfg config.Config) []string {
	dns := make([]string, len(cfg.DefaultDNS))
	for i, a := range cfg.DefaultDNS {
		dns[i] = a.String()
	}
	args := []string{
		fmt.Sprintf("%s=%s", ArgIP, netip.PrefixFrom(addr, cfg.CIDR.Bits())),
		fmt.Sprintf("%s=%s", ArgGW, cfg.BridgeIP),
	}
	if len(dns) > 0 {
		args = append(args, fmt.Sprintf("%s=%s", ArgDNS, strings.Join(dns, ",")))
	}
	return args
}
