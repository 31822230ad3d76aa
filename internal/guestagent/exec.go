package guestagent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// exec serves the exec call: output and the exit status go out as frames,
// control frames (resize, signal) come in, stdin arrives on a separate
// stdin stream. The process group dies if the host closes the stream first
// (cancellation) or the connection ends.
func (s *Server) exec(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.ExecRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	p, err := startProc(procSpec{
		Argv: req.Argv, Env: req.Env, Dir: req.Dir, User: req.User,
		TTY: req.TTY, Rows: req.Rows, Cols: req.Cols, Term: req.Term, Stdin: req.Stdin,
	})
	if err != nil {
		return st.reply(nil, err)
	}
	defer p.closeFiles()
	var sk *stdinSink
	if req.Stdin {
		sk = &stdinSink{w: p.stdinWriter(), onEOF: p.closeStdin}
		defer sk.abort()
	}
	id := cn.addSink("exec", sk)
	defer cn.removeSink(id)
	if err := st.reply(agentproto.Started{ID: id, PID: p.pid()}, nil); err != nil {
		p.killGroup()
		return err
	}
	go s.watchExec(ctx, st, p)
	pumpErr := pumpOutput(p, st.fw)
	<-p.exited
	if pumpErr != nil {
		p.killGroup()
		return pumpErr
	}
	st.SetReadDeadline(time.Now()) // release watchExec's read
	return st.end(agentproto.End{Exit: &p.status})
}

// pumpOutput copies stdout and stderr into frames until both drained.
func pumpOutput(p *proc, fw *agentproto.FrameWriter) error {
	var wg sync.WaitGroup
	var outErr, errErr error
	pump := func(f *os.File, t agentproto.FrameType, errp *error) {
		if f == nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			*errp = p.copyOutput(f, fw.Stream(t))
		}()
	}
	pump(p.stdout, agentproto.FrameStdout, &outErr)
	pump(p.stderr, agentproto.FrameStderr, &errErr)
	wg.Wait()
	return errors.Join(outErr, errErr)
}

// watchExec applies control frames and kills the process group when the
// host goes away before the process ended.
func (s *Server) watchExec(ctx context.Context, st *stream, p *proc) {
	stop := context.AfterFunc(ctx, p.killGroup)
	defer stop()
	var buf []byte
	for {
		t, payload, err := agentproto.ReadFrame(st.br, buf)
		if err != nil {
			select {
			case <-p.exited:
			default:
				if !errors.Is(err, io.EOF) {
					s.log.Debug("exec stream broken; killing the process", "pid", p.pid(), "err", err)
				}
				p.killGroup()
				// Nobody reads the output any more: fail the write that
				// may be waiting for the host's window.
				st.SetWriteDeadline(time.Now())
			}
			return
		}
		buf = payload[:0]
		if err := applyControl(p, t, payload); err != nil {
			s.log.Debug("bad control frame", "pid", p.pid(), "err", err)
		}
	}
}

func applyControl(p *proc, t agentproto.FrameType, payload []byte) error {
	if t != agentproto.FrameControl {
		return errdefs.Invalid("unexpected %s frame on an exec stream", t)
	}
	var ctl agentproto.Control
	if err := json.Unmarshal(payload, &ctl); err != nil {
		return errdefs.Invalid("malformed control frame: %v", err)
	}
	switch ctl.Op {
	case agentproto.ControlResize:
		return p.resize(ctl.Rows, ctl.Cols)
	case agentproto.ControlSignal:
		sig, err := parseSignal(ctl.Signal)
		if err != nil {
			return err
		}
		return p.signalGroup(sig)
	case agentproto.ControlEOF:
		p.closeStdin()
		return nil
	}
	return errdefs.Invalid("unknown control op %q", ctl.Op)
}
