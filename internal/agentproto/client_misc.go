package agentproto

import (
	"context"
	"fmt"
)

// Info returns facts about the guest. It doubles as the readiness probe.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	if err := c.do(ctx, CallInfo, nil, &info); err != nil {
		return Info{}, fmt.Errorf("reading guest info: %w", err)
	}
	return info, nil
}

// Ports lists the guest's listening TCP and UDP sockets with their owners.
func (c *Client) Ports(ctx context.Context) ([]Port, error) {
	var ports []Port
	if err := c.do(ctx, CallPorts, nil, &ports); err != nil {
		return nil, fmt.Errorf("listing guest ports: %w", err)
	}
	return ports, nil
}

// Stats samples the guest's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	if err := c.do(ctx, CallStats, nil, &s); err != nil {
		return Stats{}, fmt.Errorf("reading guest stats: %w", err)
	}
	return s, nil
}

// Shutdown asks the guest to power off (or reboot). The agent answers first,
// then stops processes, syncs and unmounts; the connection then drops.
func (c *Client) Shutdown(ctx context.Context, reboot bool) error {
	if err := c.do(ctx, CallShutdown, ShutdownRequest{Reboot: reboot}, nil); err != nil {
		return fmt.Errorf("shutting the guest down: %w", err)
	}
	return nil
}
