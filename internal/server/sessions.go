package server

import (
	"net/http"
	"strconv"

	"banger/api"
	"banger/api/errdefs"
)

// workRoutes are the routes of workspaces, sessions and exec bridges.
func (s *Server) workRoutes() {
	h := s.mux.HandleFunc
	h("POST /v1/vms/{name}/workspace", s.prepareWorkspace)
	h("POST /v1/vms/{name}/workspace/export", s.exportWorkspace)
	h("POST /v1/vms/{name}/exec", s.execBridge)
	h("GET /v1/vms/{name}/sessions", s.listSessions)
	h("POST /v1/vms/{name}/sessions", s.startSession)
	h("GET /v1/vms/{name}/sessions/{session}", s.showSession)
	h("DELETE /v1/vms/{name}/sessions/{session}", s.removeSession)
	h("GET /v1/vms/{name}/sessions/{session}/logs", s.sessionLogs)
	h("POST /v1/vms/{name}/sessions/{session}/attach", s.attachSession)
	h("POST /v1/vms/{name}/sessions/{session}/stop", s.stopSession)
	h("POST /v1/vms/{name}/sessions/{session}/kill", s.killSession)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	ss, err := s.d.Sessions(r.Context(), r.PathValue("name"))
	reply(w, ss, err)
}

func (s *Server) showSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.d.Session(r.Context(), r.PathValue("name"), r.PathValue("session"))
	reply(w, sess, err)
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	var req api.StartSessionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	sess, err := s.d.StartSession(r.Context(), r.PathValue("name"), req)
	reply(w, sess, err)
}

func (s *Server) removeSession(w http.ResponseWriter, r *http.Request) {
	err := s.d.RemoveSession(r.Context(), r.PathValue("name"), r.PathValue("session"))
	reply(w, struct{}{}, err)
}

func (s *Server) stopSession(w http.ResponseWriter, r *http.Request) {
	var req api.StopSessionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	sess, err := s.d.StopSession(r.Context(), r.PathValue("name"), r.PathValue("session"), req.Timeout)
	reply(w, sess, err)
}

func (s *Server) killSession(w http.ResponseWriter, r *http.Request) {
	var req api.KillSessionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	err := s.d.KillSession(r.Context(), r.PathValue("name"), r.PathValue("session"), req.Signal)
	reply(w, struct{}{}, err)
}

func (s *Server) attachSession(w http.ResponseWriter, r *http.Request) {
	var req api.AttachRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	b, err := s.d.AttachSession(r.Context(), r.PathValue("name"), r.PathValue("session"), req)
	reply(w, b, err)
}

func (s *Server) execBridge(w http.ResponseWriter, r *http.Request) {
	var req api.ExecRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	b, err := s.d.Exec(r.Context(), r.PathValue("name"), req)
	reply(w, b, err)
}

// sessionLogs streams one log of a session as raw bytes (binary safe);
// with follow=true until the session ends or the client goes.
func (s *Server) sessionLogs(w http.ResponseWriter, r *http.Request) {
	vm, name := r.PathValue("name"), r.PathValue("session")
	q := r.URL.Query()
	follow, _ := strconv.ParseBool(q.Get("follow"))
	if st := q.Get("stream"); st != "" && st != "stdout" && st != "stderr" {
		writeError(w, errdefs.Invalid("--stream %q must be stdout or stderr", st))
		return
	}
	if _, err := s.d.Session(r.Context(), vm, name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := autoFlush{flushWriter{w: w, rc: http.NewResponseController(w)}}
	if err := s.d.SessionLogs(r.Context(), vm, name, api.SessionLogsRequest{Stream: q.Get("stream"), Follow: follow}, fw); err != nil && r.Context().Err() == nil {
		// The status line is gone; the client sees a short body.
		s.log.Warn("streaming session log", "vm", vm, "session", name, "err", err)
	}
}

// autoFlush sends every write at once (logs being followed).
type autoFlush struct{ f flushWriter }

func (a autoFlush) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.f.Flush()
	return n, err
}
