package config

import "fmt"

// Egress policies a VM may have (see internal/network's EgressMode).
const (
	NetworkFull  = "full"
	NetworkNone  = "none"
	NetworkAllow = "allow"
)

func checkNetworkPolicy(s string) error {
	switch s {
	case NetworkFull, NetworkNone, NetworkAllow:
		return nil
	}
	return fmt.Errorf("%q is not a network policy; use \"full\", \"none\" or \"allow\"", s)
}
