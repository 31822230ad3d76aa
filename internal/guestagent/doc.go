// Package guestagent is banger-vsock-agent's inside of a VM: the protocol server
// (one yamux session per host connection, one stream per call), the handlers
// by noun (exec, files, sessions, ports, stats, ssh), the transports (vsock,
// virtio-serial) and the init duties it takes on as PID 1 (mounts, modules,
// network from the kernel command line, reaping, orderly shutdown).
//
// Nothing here is tied to a real guest: every path the agent reads or
// writes comes from Paths, so tests run the whole server in-process against
// temporary directories, with the host side from package agent on the other
// end of a socketpair.
package guestagent
