package web

import (
	"banger/api"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sse writes server-sent events. Data is always JSON, so it is one line
// and the page never parses markup from the stream.
type sse struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	s.rc.Flush()
	return s
}

func (s *sse) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return s.rc.Flush()
}

// heartbeat keeps proxies and the browser from timing the stream out.
func (s *sse) heartbeat() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprint(s.w, ": ping\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// live streams what live pages show: the VM list (when it changed), new
// events (of ?subject= only, after ?after=) and new notices (after
// ?notice=).
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subject := q.Get("subject")
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	seen, _ := strconv.ParseInt(q.Get("notice"), 10, 64)
	ctx := r.Context()
	out := newSSE(w)
	t := time.NewTicker(s.refresh)
	defer t.Stop()
	var last []byte
	beat := time.Now()
	for {
		vms, err := s.vmViews(ctx)
		if err == nil {
			data, _ := json.Marshal(vms)
			if !bytes.Equal(data, last) {
				if out.send("vms", vms) != nil {
					return
				}
				last, beat = data, time.Now()
			}
		}
		if evs, err := s.d.Events(ctx, subject, after, 100); err == nil {
			for _, e := range evs {
				if out.send("event", e) != nil {
					return
				}
				after = e.ID
			}
		}
		ns := s.notices.since(seen)
		for i := len(ns) - 1; i >= 0; i-- {
			if out.send("notice", ns[i]) != nil {
				return
			}
			seen = ns[i].Seq
		}
		if time.Since(beat) > 15*time.Second {
			if out.heartbeat() != nil {
				return
			}
			beat = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logTail is how much of a session log a tail starts with.
const logTail = 64 << 10

// sessionLog streams one log of a session: a "tail" event with the end of
// what was written so far, "log" events as more is written, and "end" when
// the session has ended (or the guest went away).
func (s *Server) sessionLog(w http.ResponseWriter, r *http.Request) {
	name, sname := r.PathValue("name"), r.PathValue("session")
	stream := r.URL.Query().Get("stream")
	if stream != "stderr" {
		stream = "stdout"
	}
	ctx := r.Context()
	if _, err := s.d.VM(ctx, name); err != nil {
		s.failErr(w, r, err)
		return
	}
	out := newSSE(w)
	tail := &tailBuffer{max: logTail}
	req := api.SessionLogsRequest{Stream: stream}
	if err := s.d.SessionLogs(ctx, name, sname, req, tail); err != nil {
		out.send("end", err.Error())
		return
	}
	if out.send("tail", tail.String()) != nil {
		return
	}
	req.Offset, req.Follow = tail.total, true
	err := s.d.SessionLogs(ctx, name, sname, req, writerFunc(func(p []byte) (int, error) {
		return len(p), out.send("log", string(p))
	}))
	msg := "session ended"
	if err != nil {
		msg = err.Error()
	}
	out.send("end", msg)
}

// tailBuffer keeps the last max bytes written to it and counts them all.
type tailBuffer struct {
	max   int
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
