// Package agentproto is the protocol between banger on the host and
// banger-vsock-agent in the guest, and the host side of it.
//
// One byte stream joins the two: Firecracker's hybrid vsock (DialHybridVsock)
// or a QEMU virtio-serial chardev socket (DialUnix). On it the host runs a
// short line-based sync exchange (so a serial port with stale bytes in it
// recovers), then yamux with the host as client and the guest as server. Every
// call is one yamux stream: a JSON header line, a JSON reply line, then for
// streaming calls length-prefixed frames (see Frame). The first call of a
// connection is hello, which checks the protocol's major version.
// docs/agent-protocol.md is the full description.
//
// A typical caller (the daemon) keeps one Client per VM:
//
//	c, err := agent.Connect(ctx, agent.HybridVsockDialer(udsPath, agent.DefaultVsockPort))
//	if err != nil {
//		return fmt.Errorf("waiting for the agent: %w", err)
//	}
//	defer c.Close()
//	info, err := c.Info(ctx)
//	...
//	status, err := c.Run(ctx, agent.ExecRequest{Argv: []string{"uname", "-a"}},
//		agent.Stdio{Stdout: os.Stdout, Stderr: os.Stderr})
//
// Calls are safe to run concurrently on one Client. Cancelling a call's
// context abandons it; for exec it also kills the remote process group.
package agentproto
