package guestagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// tailPoll is how often a followed log is checked for growth.
const tailPoll = 50 * time.Millisecond

// sessionLogs serves session_logs: one log as frames, then End.
func (s *Server) sessionLogs(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.SessionLogsRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	sess, err := s.sessions.get(req.Name)
	if err != nil {
		return st.reply(nil, err)
	}
	t := agentproto.FrameStdout
	switch req.Stream {
	case "", agentproto.StreamStdout:
		req.Stream = agentproto.StreamStdout
	case agentproto.StreamStderr:
		t = agentproto.FrameStderr
	default:
		return st.reply(nil, errdefs.Invalid("log stream %q must be %q or %q", req.Stream, agentproto.StreamStdout, agentproto.StreamStderr))
	}
	if err := st.reply(nil, nil); err != nil {
		return err
	}
	ctx, cancel := stopOnHostClose(ctx, st)
	defer cancel()
	go func() { // the host closing its side ends a follow
		io.Copy(io.Discard, st.br)
		cancel()
	}()
	f, err := openLog(sess.logPath(req.Stream), req.Offset)
	if err == nil {
		defer f.Close()
		err = followLog(ctx, f, req.Follow, sess.done, st.fw.Stream(t))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return st.end(agentproto.End{Error: agentproto.WireError(err)})
}

// stopOnHostClose is the context of a call that tails output until the
// host closes its side. Its end also fails the writes in progress, which
// would otherwise wait for a window update from a host that no longer
// reads, until the host's stream close timeout. Cancel it only once the
// call has written its last frame.
func stopOnHostClose(ctx context.Context, st *stream) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { st.SetWriteDeadline(time.Now()) })
	return ctx, cancel
}

// openLog opens a log at offset; -1 means its current end.
func openLog(path string, offset int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	whence := io.SeekStart
	if offset < 0 {
		offset, whence = 0, io.SeekEnd
	}
	if _, err := f.Seek(offset, whence); err != nil {
		f.Close()
		return nil, fmt.Errorf("seeking log: %w", err)
	}
	return f, nil
}

// followLog copies f to w. With follow it keeps polling until done is
// closed, then copies what is left.
func followLog(ctx context.Context, f *os.File, follow bool, done <-chan struct{}, w io.Writer) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			continue
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("reading log: %w", err)
		}
		if !follow {
			return nil
		}
		select {
		case <-done:
			_, err := io.CopyBuffer(w, f, buf)
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(tailPoll):
		}
	}
}

// sessionAttach serves session_attach: live output of both logs, stdin by
// a stdin stream (pipe mode), End with the exit status when the session
// ends. The host closing the stream detaches.
func (s *Server) sessionAttach(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.SessionAttachRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	sess, err := s.sessions.get(req.Name)
	if err != nil {
		return st.reply(nil, err)
	}
	if err := sess.attach(); err != nil {
		return st.reply(nil, err)
	}
	defer sess.detach()
	// The logs are opened before the reply so no output the host causes
	// after it can slip past the starting offsets.
	logs, err := openLogs(sess, req.Replay)
	if err != nil {
		return st.reply(nil, err)
	}
	defer closeAll(logs)
	ctx, cancel := stopOnHostClose(ctx, st)
	defer cancel()
	sk := sess.stdinSink(ctx.Done())
	if sk != nil {
		defer sk.abort()
	}
	id := cn.addSink("attach", sk)
	defer cn.removeSink(id)
	if err := st.reply(agentproto.Started{ID: id, PID: sess.rec.PID}, nil); err != nil {
		return err
	}
	go func() {
		s.attachControl(st, sess, sk)
		cancel()
	}()
	if err := followBoth(ctx, sess, logs, st.fw); err != nil || ctx.Err() != nil {
		return err
	}
	return st.end(agentproto.End{Exit: sess.view().Exit})
}

// openLogs opens stdout and stderr at their start or their current end.
func openLogs(sess *session, replay bool) ([]*os.File, error) {
	offset := int64(-1)
	if replay {
		offset = 0
	}
	var logs []*os.File
	for _, name := range []string{agentproto.StreamStdout, agentproto.StreamStderr} {
		f, err := openLog(sess.logPath(name), offset)
		if err != nil {
			closeAll(logs)
			return nil, err
		}
		logs = append(logs, f)
	}
	return logs, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// followBoth tails stdout and stderr until the session ends or ctx is done.
func followBoth(ctx context.Context, sess *session, logs []*os.File, fw *agentproto.FrameWriter) error {
	types := []agentproto.FrameType{agentproto.FrameStdout, agentproto.FrameStderr}
	var wg sync.WaitGroup
	errs := make([]error, len(logs))
	for i, f := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = followLog(ctx, f, true, sess.done, fw.Stream(types[i]))
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// attachControl reads the host's control frames until the stream ends; an
// eof control closes the session's stdin once the stdin stream drained.
func (s *Server) attachControl(st *stream, sess *session, sk *stdinSink) {
	var buf []byte
	for {
		t, payload, err := agentproto.ReadFrame(st.br, buf)
		if err != nil {
			return
		}
		buf = payload[:0]
		var ctl agentproto.Control
		if t != agentproto.FrameControl || json.Unmarshal(payload, &ctl) != nil {
			s.log.Debug("ignoring bad frame on an attach stream", "type", t)
			continue
		}
		if ctl.Op == agentproto.ControlEOF && sk != nil {
			sk.wait(5 * time.Second)
			sess.closeStdin()
		}
	}
}

func (sess *session) attach() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.attached {
		return errdefs.Conflict("session %q is already attached; detach the other client first", sess.rec.Name)
	}
	sess.attached = true
	return nil
}

func (sess *session) detach() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.attached = false
}

// stdinSink feeds the session's stdin pipe, or is nil without one.
func (sess *session) stdinSink(abort <-chan struct{}) *stdinSink {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.stdin == nil {
		return nil
	}
	return &stdinSink{w: &abortableWriter{f: sess.stdin, abort: abort}}
}

func (sess *session) closeStdin() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.stdin != nil {
		sess.stdin.Close()
		sess.stdin = nil
	}
}

// abortableWriter writes to a pipe the process may not be reading, giving
// up when abort is closed (the attachment ended) instead of blocking.
type abortableWriter struct {
	f     *os.File
	abort <-chan struct{}
}

var errDetached = errors.New("attachment ended")

func (w *abortableWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		w.f.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := w.f.Write(p[done:])
		done += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			select {
			case <-w.abort:
				return done, errDetached
			default:
				continue
			}
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
