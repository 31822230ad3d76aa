package guestagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// stdinSink is where the bytes of a stdin stream go: a process's stdin pipe
// or PTY. One stdin stream at a time may feed a sink.
type stdinSink struct {
	w io.Writer
	// onEOF runs when the host half-closes the stream (exec: close the
	// process's stdin). Nil for attachments, where EOF only ends the stream
	// and an eof control frame closes the session's stdin.
	onEOF func()

	mu     sync.Mutex
	active net.Conn
	done   chan struct{} // closed when the active copy ends
}

func (sk *stdinSink) claim(c net.Conn) error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.active != nil {
		return errdefs.Conflict("stdin is already being written by another stream")
	}
	sk.active = c
	sk.done = make(chan struct{})
	return nil
}

func (sk *stdinSink) release() {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	sk.active = nil
	close(sk.done)
}

// abort stops the active copy without EOF semantics.
func (sk *stdinSink) abort() {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.active != nil {
		sk.active.SetReadDeadline(time.Now())
	}
}

// wait returns once no copy is active, or after timeout.
func (sk *stdinSink) wait(timeout time.Duration) {
	sk.mu.Lock()
	done := sk.done
	sk.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// stdin serves the stdin call: raw bytes until the host half-closes.
func (s *Server) stdin(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.StdinRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	sk := cn.sink(req.ID)
	if sk == nil {
		return st.reply(nil, errdefs.NotFound("nothing on this connection takes stdin as %q (it may have ended)", req.ID))
	}
	if err := sk.claim(st.Conn); err != nil {
		return st.reply(nil, err)
	}
	defer sk.release()
	if err := st.reply(nil, nil); err != nil {
		return err
	}
	if _, err := io.Copy(sk.w, st.br); err != nil {
		return fmt.Errorf("copying stdin: %w", err)
	}
	if sk.onEOF != nil {
		sk.onEOF()
	}
	return nil
}
