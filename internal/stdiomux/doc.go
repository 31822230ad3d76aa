// Package stdiomux is the stdio_mux_v1 protocol (docs/stdio_mux_v1.md)
// and the daemon's bridges that speak it: session attaches and exec.
//
// Sessions themselves belong to the guest agent: it supervises the
// process, keeps its logs and, in pipe mode, its stdin, and remembers
// everything on the guest's disk. The daemon holds no state of its own
// about them, so after a daemon restart it sees the same sessions by
// asking the agent again.
//
// What lives here:
//
//   - the stdio_mux_v1 framing (docs/stdio_mux_v1.md): length-prefixed
//     frames tagged stdin, stdout, stderr, control and exit;
//   - Bridge, a one-client unix socket in the daemon's runtime directory
//     that relays a Remote (an attached session, or an exec) to a client
//     of the daemon's own user;
//   - Conn, the client end that the CLI uses;
//   - the preflight check run in the guest before a session starts.
//
// A daemon attach goes like this:
//
//	b, err := session.Listen(attachDir, log)
//	att, err := agentClient.AttachSession(ctx, req, b.Stdout(), b.Stderr())
//	go b.Serve(daemonLifetime, remoteFor(att), session.Control{Stdin: true}, session.AcceptWait)
//	return b.Path // the client dials it with session.Dial
package stdiomux
