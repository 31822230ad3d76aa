package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"banger/api"
)

// networkFlags are the egress policy flags of vm create, vm run and
// vm set.
type networkFlags struct {
	mode     string
	allow    []string
	allowLAN bool
}

func (n *networkFlags) add(f *pflag.FlagSet) {
	f.StringVar(&n.mode, "network", "", "egress policy: full (everything but private and link-local ranges), none, or allow (only --allow; default: default_network_policy)")
	f.StringArrayVar(&n.allow, "allow", nil, "with --network allow: a DNS name (*.example.org for every name under it) or IPv4 CIDR the VM may reach; repeat for more")
	f.BoolVar(&n.allowLAN, "allow-lan", false, "let the VM reach private and link-local ranges, other VMs and the host (default: allow_private_networks)")
}

// policy is the policy the flags ask for, nil when none was given (the
// daemon then applies the config's default). --allow alone means
// --network allow.
func (n *networkFlags) policy(f *pflag.FlagSet) *api.NetworkPolicy {
	if !f.Changed("network") && !f.Changed("allow") && !f.Changed("allow-lan") {
		return nil
	}
	mode := n.mode
	if mode == "" && len(n.allow) > 0 {
		mode = "allow"
	}
	return &api.NetworkPolicy{Mode: mode, Allow: n.allow, AllowLAN: n.allowLAN}
}

// networkRows are vm show's lines for the policy.
func networkRows(v api.VM) [][]string {
	p := v.Network
	if p == nil {
		return nil
	}
	s := p.Mode
	if len(p.Allow) > 0 {
		s += ": " + strings.Join(p.Allow, ", ")
	}
	lan := "private and link-local ranges, other VMs and the host denied"
	if p.AllowLAN {
		lan = "private ranges, other VMs and the host allowed (--allow-lan)"
	}
	return [][]string{{"network:", s}, {"", lan}}
}
