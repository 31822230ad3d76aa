package agentproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// StartSession starts a supervised process that outlives this connection.
func (c *Client) StartSession(ctx context.Context, req SessionStart) (Session, error) {
	var s Session
	if err := c.do(ctx, CallSessionStart, req, &s); err != nil {
		return Session{}, fmt.Errorf("starting session %q: %w", req.Name, err)
	}
	return s, nil
}

// Sessions lists every session the guest remembers, running or not.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var ss []Session
	if err := c.do(ctx, CallSessionList, nil, &ss); err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return ss, nil
}

// SessionLogs copies one log of a session to w, from req.Offset; with
// req.Follow it keeps copying until the session ends or ctx is done.
func (c *Client) SessionLogs(ctx context.Context, req SessionLogsRequest, w io.Writer) error {
	cl, err := c.open(ctx, CallSessionLogs, req, nil)
	if err != nil {
		return fmt.Errorf("reading logs of session %q: %w", req.Name, err)
	}
	defer cl.close()
	end, err := readFrames(cl, w, w)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("reading logs of session %q: %w", req.Name, ctx.Err())
	case err != nil:
		return fmt.Errorf("reading logs of session %q: %w", req.Name, err)
	case end.Error != nil:
		return end.Error.Err()
	}
	return nil
}

// StopSession sends SIGTERM to the session's process group, then SIGKILL
// after req.Timeout, and returns the session once it has ended.
func (c *Client) StopSession(ctx context.Context, req SessionStopRequest) (Session, error) {
	var s Session
	if err := c.do(ctx, CallSessionStop, req, &s); err != nil {
		return Session{}, fmt.Errorf("stopping session %q: %w", req.Name, err)
	}
	return s, nil
}

// KillSession sends a signal (KILL by default) to the session's process
// group without waiting.
func (c *Client) KillSession(ctx context.Context, req SessionKillRequest) error {
	if err := c.do(ctx, CallSessionKill, req, nil); err != nil {
		return fmt.Errorf("killing session %q: %w", req.Name, err)
	}
	return nil
}

// RemoveSession forgets an ended session and deletes its logs.
func (c *Client) RemoveSession(ctx context.Context, name string) error {
	if err := c.do(ctx, CallSessionRemove, SessionName{Name: name}, nil); err != nil {
		return fmt.Errorf("removing session %q: %w", name, err)
	}
	return nil
}

// ErrDetached is what Attachment.Wait returns after Detach.
var ErrDetached = errors.New("detached from session")

// Attachment is an exclusive, live view of a session: its new output, and
// its stdin in pipe mode. Only one host may be attached at a time.
type Attachment struct {
	c    *Client
	ctx  context.Context
	cl   *call
	fw   *FrameWriter
	id   string
	done chan struct{}
	exit *ExitStatus
	err  error

	detached atomic.Bool
	mu       sync.Mutex
	stdin    *call
}

// AttachSession attaches to a session; output goes to stdout and stderr
// (nil discards). A second attach while one is active fails with
// errdefs.ErrConflict. Cancelling ctx detaches.
func (c *Client) AttachSession(ctx context.Context, req SessionAttachRequest, stdout, stderr io.Writer) (*Attachment, error) {
	var st Started
	cl, err := c.open(ctx, CallSessionAttach, req, &st)
	if err != nil {
		return nil, fmt.Errorf("attaching to session %q: %w", req.Name, err)
	}
	a := &Attachment{c: c, ctx: ctx, cl: cl, fw: NewFrameWriter(cl.st), id: st.ID, done: make(chan struct{})}
	go a.read(orDiscard(stdout), orDiscard(stderr))
	return a, nil
}

func (a *Attachment) read(stdout, stderr io.Writer) {
	defer close(a.done)
	defer a.cl.close()
	defer a.closeStdinStream()
	end, err := readFrames(a.cl, stdout, stderr)
	switch {
	case a.detached.Load() || a.ctx.Err() != nil:
		a.err = ErrDetached
	case err != nil:
		a.err = err
	case end.Error != nil:
		a.err = end.Error.Err()
	default:
		a.exit = end.Exit
	}
}

// closeStdinStream ends the stdin stream once the attachment is over.
func (a *Attachment) closeStdinStream() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stdin != nil {
		a.stdin.close()
	}
}

// Wait returns when the session ends (its exit status, nil when the agent
// does not know it) or the attachment ends (ErrDetached or an error).
func (a *Attachment) Wait() (*ExitStatus, error) {
	<-a.done
	return a.exit, a.err
}

// Detach ends the attachment; the session keeps running and keeps its
// stdin. The attach stream closes before the stdin stream so the guest never
// mistakes a detach for end of input.
func (a *Attachment) Detach() error {
	a.detached.Store(true)
	a.cl.stop()
	a.cl.st.Close()
	<-a.done // read closes the stdin stream, after the attach stream
	if errors.Is(a.err, ErrDetached) || a.err == nil {
		return nil
	}
	return a.err
}

// Write sends p to the session's stdin (pipe mode only). Writes after
// CloseStdin fail.
func (a *Attachment) Write(p []byte) (int, error) {
	cl, err := a.stdinCall()
	if err != nil {
		return 0, err
	}
	return cl.st.Write(p)
}

// CloseStdin delivers EOF to the session's stdin after what was written:
// the stdin stream ends first, then an eof control frame on the attach
// stream tells the guest to close the pipe once that stream is drained.
func (a *Attachment) CloseStdin() error {
	a.mu.Lock()
	if a.stdin != nil {
		a.stdin.close()
	}
	a.mu.Unlock()
	if err := a.fw.WriteJSON(FrameControl, Control{Op: ControlEOF}); err != nil {
		return fmt.Errorf("closing session stdin: %w", err)
	}
	return nil
}

func (a *Attachment) stdinCall() (*call, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stdin != nil {
		return a.stdin, nil
	}
	cl, err := a.c.open(a.ctx, CallStdin, StdinRequest{ID: a.id}, nil)
	if err != nil {
		return nil, fmt.Errorf("opening session stdin: %w", err)
	}
	a.stdin = cl
	return cl, nil
}
