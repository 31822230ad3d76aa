package cli

import (
	"context"
	"slices"
	"time"

	"banger/api"
	"banger/client"
)

// opencodeWait is how long 'vm run' waits for the guest's opencode
// service to listen before printing the attach line without it.
const opencodeWait = 20 * time.Second

// opencodeListening reports whether the guest lists a listener on
// opencodeGuestPort, asking the agent every second for up to wait: the
// service starts at boot and may still be starting when the checkout is in.
func opencodeListening(ctx context.Context, cl *client.Client, vm string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if ports, err := cl.Ports(ctx, vm); err == nil && listensOn(ports, opencodeGuestPort) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func listensOn(ports []api.Port, port int) bool {
	return slices.ContainsFunc(ports, func(p api.Port) bool {
		return p.Port == port && (p.Proto == "tcp" || p.Proto == "tcp6")
	})
}
