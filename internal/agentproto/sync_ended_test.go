package agentproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// A peer that closes its end surfaces as EOF on a read but as a closed
// pipe on a write; both are the end of a session, not a failure.
func TestSessionEnded(t *testing.T) {
	a, b := net.Pipe()
	b.Close()
	_, werr := a.Write([]byte("x"))
	_, rerr := a.Read(make([]byte, 1))
	for _, err := range []error{werr, rerr, fmt.Errorf("wrapped: %w", io.EOF)} {
		if !SessionEnded(err) {
			t.Errorf("SessionEnded(%v) = false", err)
		}
	}
	if SessionEnded(errors.New("protocol violation")) {
		t.Error("an unrelated error counts as the end of a session")
	}
}
