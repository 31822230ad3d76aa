package bridge

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"banger/api"
	"banger/internal/agentproto"
)

// Attached is an agent session attachment seen as a Remote. Detaching
// leaves the session running with its stdin open.
type Attached struct {
	Att  *agentproto.Attachment
	Cl   *agentproto.Client
	Name string
	// Life bounds signal calls (the daemon's lifetime).
	Life context.Context
}

func (r *Attached) Write(p []byte) (int, error) { return r.Att.Write(p) }
func (r *Attached) CloseStdin() error           { return r.Att.CloseStdin() }
func (r *Attached) Detach() error               { return r.Att.Detach() }

// Signal signals the session's process group.
func (r *Attached) Signal(sig string) error {
	return r.Cl.KillSession(r.Life, agentproto.SessionKillRequest{Name: r.Name, Signal: sig})
}

// Wait returns when the session ends or the attachment does.
func (r *Attached) Wait() (*api.ExitStatus, error) {
	exit, err := r.Att.Wait()
	if errors.Is(err, agentproto.ErrDetached) {
		return nil, ErrDetached
	}
	if err != nil || exit == nil {
		return nil, err
	}
	return &api.ExitStatus{Code: exit.Code, Signal: exit.Signal}, nil
}

// Exec is a guest process seen as a Remote; detaching kills it.
type Exec struct {
	p        *agentproto.Process
	stdin    *io.PipeWriter
	cancel   context.CancelFunc
	detached atomic.Bool
}

// StartExec starts req in the guest (in life, not a request's context)
// with its output going to b.
func StartExec(life context.Context, cl *agentproto.Client, req agentproto.ExecRequest, b *Bridge) (*Exec, error) {
	ctx, cancel := context.WithCancel(life)
	stdin, stdinW := io.Pipe()
	p, err := cl.Start(ctx, req, agentproto.Stdio{Stdin: stdin, Stdout: b.Stdout(), Stderr: b.Stderr()})
	if err != nil {
		cancel()
		return nil, err
	}
	return &Exec{p: p, stdin: stdinW, cancel: cancel}, nil
}

func (r *Exec) Write(p []byte) (int, error) { return r.stdin.Write(p) }
func (r *Exec) CloseStdin() error           { return r.stdin.Close() }
func (r *Exec) Signal(sig string) error     { return r.p.Signal(sig) }

// Resize sets the size of the process's terminal; without a TTY the
// guest ignores it.
func (r *Exec) Resize(rows, cols uint16) error { return r.p.Resize(rows, cols) }

// Detach kills the process.
func (r *Exec) Detach() error {
	r.detached.Store(true)
	r.cancel()
	r.stdin.CloseWithError(ErrDetached)
	return nil
}

// Wait returns the process's exit status.
func (r *Exec) Wait() (*api.ExitStatus, error) {
	st, err := r.p.Wait()
	if err != nil {
		if r.detached.Load() {
			return nil, ErrDetached
		}
		return nil, err
	}
	return &api.ExitStatus{Code: st.Code, Signal: st.Signal}, nil
}

// Release frees what the process held once the bridge is over.
func (r *Exec) Release() {
	r.cancel()
	r.stdin.Close()
}
