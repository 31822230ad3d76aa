package agentproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Stdio connects a remote process to local streams, like exec.Cmd's fields.
// A nil Stdin gives the process /dev/null; nil writers discard. As with
// exec.Cmd, a Stdin that never returns keeps one goroutine blocked in Read.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused with a PTY: the terminal merges both streams
}

// Process is a command started with Client.Start.
type Process struct {
	c      *Client
	ctx    context.Context
	cl     *call
	fw     *FrameWriter
	id     string
	pid    int
	done   chan struct{}
	status ExitStatus
	err    error
}

// Start runs req.Argv in the guest. Cancelling ctx kills the remote process
// group and makes Wait return the context's error.
func (c *Client) Start(ctx context.Context, req ExecRequest, stdio Stdio) (*Process, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("starting a guest process: empty argv")
	}
	req.Stdin = stdio.Stdin != nil
	var st Started
	cl, err := c.open(ctx, CallExec, req, &st)
	if err != nil {
		return nil, fmt.Errorf("starting %s in the guest: %w", req.Argv[0], err)
	}
	p := &Process{c: c, ctx: ctx, cl: cl, fw: NewFrameWriter(cl.st), id: st.ID, pid: st.PID, done: make(chan struct{})}
	go p.readOutput(orDiscard(stdio.Stdout), orDiscard(stdio.Stderr))
	if stdio.Stdin != nil {
		go p.c.pumpStdin(ctx, p.id, stdio.Stdin, p.done)
	}
	return p, nil
}

// Run starts req and waits for it.
func (c *Client) Run(ctx context.Context, req ExecRequest, stdio Stdio) (ExitStatus, error) {
	p, err := c.Start(ctx, req, stdio)
	if err != nil {
		return ExitStatus{}, err
	}
	return p.Wait()
}

// PID is the process ID in the guest.
func (p *Process) PID() int { return p.pid }

// Wait returns the exit status once the process ended and its output was
// delivered. A non-zero exit is not an error.
func (p *Process) Wait() (ExitStatus, error) {
	<-p.done
	return p.status, p.err
}

// Signal sends sig ("TERM", "INT", "HUP", "KILL", ... or a number) to the
// process.
func (p *Process) Signal(sig string) error {
	return p.control(Control{Op: ControlSignal, Signal: sig})
}

// Resize sets the PTY size; the guest ignores it without a PTY.
func (p *Process) Resize(rows, cols uint16) error {
	return p.control(Control{Op: ControlResize, Rows: rows, Cols: cols})
}

func (p *Process) control(ctl Control) error {
	select {
	case <-p.done:
		return errors.New("process already finished")
	default:
	}
	if err := p.fw.WriteJSON(FrameControl, ctl); err != nil {
		return fmt.Errorf("sending %s: %w", ctl.Op, err)
	}
	return nil
}

func (p *Process) readOutput(stdout, stderr io.Writer) {
	defer close(p.done)
	defer p.cl.close()
	end, err := readFrames(p.cl, stdout, stderr)
	switch {
	case p.ctx.Err() != nil:
		p.err = fmt.Errorf("running guest process: %w", p.ctx.Err())
	case err != nil:
		p.err = fmt.Errorf("running guest process: %w", err)
	case end.Error != nil:
		p.err = end.Error.Err()
	case end.Exit != nil:
		p.status = *end.Exit
	default:
		p.err = errors.New("running guest process: agent sent no exit status")
	}
}

// readFrames copies stdout and stderr frames until the End frame.
func readFrames(cl *call, stdout, stderr io.Writer) (End, error) {
	var buf []byte
	for {
		t, payload, err := ReadFrame(cl.br, buf)
		if err != nil {
			return End{}, fmt.Errorf("reading output: %w", noEOF(err))
		}
		buf = payload[:0]
		switch t {
		case FrameStdout:
			_, err = stdout.Write(payload)
		case FrameStderr:
			_, err = stderr.Write(payload)
		case FrameEnd:
			var end End
			if err := json.Unmarshal(payload, &end); err != nil {
				return End{}, fmt.Errorf("decoding end frame: %w", err)
			}
			boundEnd(&end)
			return end, nil
		default:
			return End{}, fmt.Errorf("unexpected %s frame from the agent", t)
		}
		if err != nil {
			return End{}, fmt.Errorf("writing output locally: %w", err)
		}
	}
}

// pumpStdin copies r to the stdin stream of id, then half-closes it, which
// the guest turns into EOF on the process's stdin.
func (c *Client) pumpStdin(ctx context.Context, id string, r io.Reader, done <-chan struct{}) {
	cl, err := c.open(ctx, CallStdin, StdinRequest{ID: id}, nil)
	if err != nil {
		return // the process ended first, or the connection is gone
	}
	defer cl.close()
	go func() {
		select {
		case <-done:
			cl.close()
		case <-ctx.Done():
		}
	}()
	io.Copy(cl.st, r)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Output runs argv in the guest and returns its stdout. A non-zero exit
// is an error carrying stderr.
func (c *Client) Output(ctx context.Context, argv, env []string) (string, error) {
	stdout, stderr := LimitedBuffer{Max: OutputMax}, LimitedBuffer{Max: OutputMax}
	st, err := c.Run(ctx, ExecRequest{Argv: argv, Env: env}, Stdio{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return "", err
	}
	if !st.Success() {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s in the guest: %s", st, msg)
	}
	return stdout.String(), nil
}

// OutputMax bounds what Output keeps of each output stream of the short
// scripts it runs; their honest output is a few lines.
const OutputMax = 1 << 20
