package api

// NetworkPolicy is what a VM may reach (docs/networking.md, "Egress
// policy").
type NetworkPolicy struct {
	// Mode is "full" (everything but the always-denied ranges), "none"
	// (nothing; the agent path and vm ssh still work) or "allow" (only
	// Allow).
	Mode string `json:"mode"`
	// Allow lists DNS names ("*.example.org" for every name under it)
	// and IPv4 CIDRs an allow-mode VM may reach.
	Allow []string `json:"allow,omitempty"`
	// AllowLAN lifts the always-deny list: private and link-local ranges,
	// other VMs and the host's own addresses.
	AllowLAN bool `json:"allow_lan,omitempty"`
}
