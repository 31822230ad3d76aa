package cli

import (
	"context"
	"net"
	"strconv"
	"time"
)

// opencodeGuestPort is where the devbox image's opencode service listens.
const opencodeGuestPort = 4096

// opencodeRoute finds out whether NAME.vm resolves on this host and, when
// it does not, which host port a forward to the guest's opencode can use:
// 4096 when it is free, else one the kernel picks.
func opencodeRoute(ctx context.Context, vm string) (resolves bool, hostPort int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if addrs, err := net.DefaultResolver.LookupHost(ctx, vm+".vm"); err == nil && len(addrs) > 0 {
		return true, 0
	}
	return false, freeLoopbackPort(opencodeGuestPort)
}

// freeLoopbackPort returns want when 127.0.0.1:want can be bound, else a
// free port (want again if none can be had).
func freeLoopbackPort(want int) int {
	for _, p := range []int{want, 0} {
		ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			got := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			return got
		}
	}
	return want
}
