package server

import (
	"context"

	"banger/api"
)

// NetworkPolicies changes VMs' egress policies.
type NetworkPolicies interface {
	// SetNetworkPolicy replaces a VM's policy; a running VM gets it at
	// once.
	SetNetworkPolicy(ctx context.Context, name string, p api.NetworkPolicy) (api.VM, error)
}
