package guestagent_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"banger/internal/agentproto"
)

// TestServeVsockLoopback serves the agent on AF_VSOCK as in a guest and
// calls it from the same machine through the kernel's loopback transport
// (vsock_loopback). The listener binds to the machine's context ID: that is
// VMADDR_CID_LOCAL (1) where loopback is the only transport, and a guest's
// own CID inside a VM, which loopback also carries.
func TestServeVsockLoopback(t *testing.T) {
	cid := vsockLoopback(t)
	probe, err := vsock.Listen(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*vsock.Addr).Port
	probe.Close()

	e := newEnv(t, guestConfig())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.ServeVsock(ctx, port) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serving vsock: %v", err)
		}
	}()
	dial := func(ctx context.Context) (net.Conn, error) { return vsock.DialContext(ctx, cid, port, nil) }
	c, err := agentproto.Connect(testCtx(t, 10*time.Second), dial)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out syncBuffer
	st, err := c.Run(testCtx(t, 10*time.Second), agentproto.ExecRequest{Argv: []string{"echo", "over vsock"}}, agentproto.Stdio{Stdout: &out})
	if err != nil || !st.Success() || out.String() != "over vsock\n" {
		t.Fatalf("exec over vsock: %+v %q, %v", st, out.String(), err)
	}
}

// vsockLoopback returns the context ID that reaches this machine's vsock
// listeners, VMADDR_CID_LOCAL if it does, or skips when AF_VSOCK cannot
// reach itself here.
func vsockLoopback(t *testing.T) uint32 {
	t.Helper()
	own, err := vsock.ContextID()
	if err != nil {
		t.Skipf("no AF_VSOCK here (%v); load vsock_loopback to run this test", err)
	}
	ln, err := vsock.Listen(0, nil)
	if err != nil {
		t.Skipf("cannot listen on AF_VSOCK (%v); load vsock_loopback to run this test", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var errs []string
	for _, cid := range slices.Compact([]uint32{vsock.Local, own}) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := vsock.DialContext(ctx, cid, ln.Addr().(*vsock.Addr).Port, nil)
		cancel()
		if err == nil {
			c.Close()
			return cid
		}
		errs = append(errs, err.Error())
	}
	t.Skipf("vsock loopback unavailable (the kernel needs vsock_loopback, CONFIG_VSOCKETS_LOOPBACK): %s", strings.Join(errs, "; "))
	return 0
}
