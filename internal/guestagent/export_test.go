package guestagent

import "context"

// ServeVsock lets the external tests serve the AF_VSOCK transport.
func (s *Server) ServeVsock(ctx context.Context, port uint32) error { return s.serveVsock(ctx, port) }
