// Package stdiomux is the client side of the stdio_mux_v1 protocol
// (docs/stdio_mux_v1.md): the length-prefixed framing of stdin, stdout,
// stderr, control and exit frames, and Conn, the end a client of bangerd
// dials after asking for an attach or an exec. The daemon's end of the
// same sockets is internal to banger.
package stdiomux
