package agentproto

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"banger/api/errdefs"
)

// requireMinor refuses call when the agent's protocol is older than
// major.minor of this build with the given minor, before anything is sent:
// an older agent would answer "unknown call", which says less.
func (c *Client) requireMinor(call string, minor int) error {
	if parseMinor(c.peer.Protocol) >= minor {
		return nil
	}
	return errdefs.Unsupported("the guest's agent is too old for %s: it speaks protocol %s and %s needs 1.%d; "+
		"install the agent from this banger release into the image", call, c.peer.Protocol, call, minor)
}

// SetClock sets the guest's wall clock (CLOCK_REALTIME) to now, the host's
// time, and reports how far it moved. A guest resumed after a long suspend
// wakes with the clock it had when it was saved.
func (c *Client) SetClock(ctx context.Context, now time.Time) (ClockResult, error) {
	var res ClockResult
	if err := c.requireMinor(CallSetClock, 1); err != nil {
		return res, err
	}
	if now.IsZero() {
		return res, errdefs.Invalid("set_clock needs the host's time")
	}
	if err := c.do(ctx, CallSetClock, SetClockRequest{Time: now}, &res); err != nil {
		return ClockResult{}, fmt.Errorf("setting the guest's clock: %w", err)
	}
	return res, nil
}

// Reseed writes entropy into the guest kernel's random pool, credited, and
// forces its CRNG to reseed, so forks of one saved state stop sharing their
// random streams. A nil entropy draws ReseedBytes from the host's CSPRNG.
func (c *Client) Reseed(ctx context.Context, entropy []byte) (ReseedResult, error) {
	var res ReseedResult
	if err := c.requireMinor(CallReseed, 1); err != nil {
		return res, err
	}
	if entropy == nil {
		entropy = make([]byte, ReseedBytes)
		rand.Read(entropy)
	}
	if n := len(entropy); n < MinReseedBytes || n > MaxReseedBytes {
		return res, errdefs.Invalid("reseed with %d bytes of entropy: want %d to %d", n, MinReseedBytes, MaxReseedBytes)
	}
	if err := c.do(ctx, CallReseed, ReseedRequest{Entropy: entropy}, &res); err != nil {
		return ReseedResult{}, fmt.Errorf("reseeding the guest's random pool: %w", err)
	}
	return res, nil
}

// Reidentify gives the guest a new identity: hostname, eth0's MAC address,
// address, default route and resolvers, a new machine-id and new SSH host
// keys, which it returns for the host to pin. The request is checked here
// first (Parse), and again by the agent before it changes anything. Call
// Reseed before it: the new keys come from the guest's random pool.
func (c *Client) Reidentify(ctx context.Context, req ReidentifyRequest) (Reidentified, error) {
	var res Reidentified
	if err := c.requireMinor(CallReidentify, 1); err != nil {
		return res, err
	}
	if _, err := req.Parse(); err != nil {
		return res, fmt.Errorf("reidentifying the guest: %w", err)
	}
	if err := c.do(ctx, CallReidentify, req, &res); err != nil {
		return Reidentified{}, fmt.Errorf("reidentifying the guest: %w", err)
	}
	return res, nil
}
