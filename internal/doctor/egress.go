package doctor

import (
	"context"

	"banger/internal/network"
)

// checkEgressHelper reports whether the daemon can enforce network
// policies through the egress helper. VMs run without it (under full,
// without the always-deny list), so it only ever warns.
func checkEgressHelper(ctx context.Context, e *Env) Result {
	p := e.networkStatus(ctx).Piece("egress")
	if p.State == network.StateOK {
		return pass(p.Detail)
	}
	if p.Detail == "" {
		p.Detail = "cannot tell whether an egress helper enforces network policies"
	}
	if p.Fix == "" {
		p.Fix = network.SetupCommand
	}
	return warn(p.Detail, p.Fix)
}
