// Package bridge is the daemon's end of the stdio_mux_v1 protocol
// (docs/stdio_mux_v1.md; the framing and the client's end are the public
// package banger/api/stdiomux): session attaches and exec.
//
// Sessions themselves belong to the guest agent: it supervises the
// process, keeps its logs and, in pipe mode, its stdin, and remembers
// everything on the guest's disk. The daemon holds no state of its own
// about them, so after a daemon restart it sees the same sessions by
// asking the agent again.
//
// What lives here:
//
//   - Bridge, a one-client unix socket in the daemon's runtime directory
//     that relays a Remote (an attached session, or an exec) to a client
//     of the daemon's own user;
//   - the Remotes it relays: an attached session, or an exec;
//   - the preflight check run in the guest before a session starts.
//
// A daemon attach goes like this:
//
//	b, err := bridge.Listen(attachDir, log)
//	att, err := agentClient.AttachSession(ctx, req, b.Stdout(), b.Stderr())
//	go b.Serve(daemonLifetime, &bridge.Attached{...}, stdiomux.Control{Stdin: true}, bridge.AcceptWait)
//	return b.Path // the client dials it with stdiomux.Dial
package bridge
