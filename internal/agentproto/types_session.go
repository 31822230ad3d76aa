package agentproto

import "time"

// Session modes.
const (
	// SessionDetached runs with stdin on /dev/null.
	SessionDetached = "detached"
	// SessionPipe keeps a stdin pipe open in the agent, across host
	// disconnects, until the host closes it or the process exits.
	SessionPipe = "pipe"
)

// Session states.
const (
	SessionRunning = "running"
	SessionExited  = "exited"
)

// SessionStart is the argument of session_start.
type SessionStart struct {
	Name string   `json:"name"` // [A-Za-z0-9._-], 1 to 64 characters, unique in the guest
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	User string   `json:"user,omitempty"`
	Mode string   `json:"mode,omitempty"` // SessionDetached (default) or SessionPipe
}

// Session is a supervised process as the guest remembers it (meta.json).
type Session struct {
	Name      string      `json:"name"`
	Argv      []string    `json:"argv"`
	Dir       string      `json:"dir,omitempty"`
	User      string      `json:"user,omitempty"`
	Mode      string      `json:"mode"`
	State     string      `json:"state"`
	PID       int         `json:"pid"`
	StartedAt time.Time   `json:"started_at"`
	EndedAt   *time.Time  `json:"ended_at,omitempty"`
	Exit      *ExitStatus `json:"exit,omitempty"` // nil while running, or when the agent lost track (see Note)
	Note      string      `json:"note,omitempty"` // e.g. why the exit status is unknown
	StdinOpen bool        `json:"stdin_open"`     // pipe mode: the agent still holds the stdin pipe
	Attached  bool        `json:"attached"`       // a host is attached right now
}

// SessionName is the argument of calls that name one session.
type SessionName struct {
	Name string `json:"name"`
}

// Log streams of a session.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// SessionLogsRequest is the argument of session_logs. The guest answers with
// FrameStdout or FrameStderr frames (by Stream) and an End frame.
type SessionLogsRequest struct {
	Name   string `json:"name"`
	Stream string `json:"stream"`           // StreamStdout (default) or StreamStderr
	Offset int64  `json:"offset,omitempty"` // start at this byte
	Follow bool   `json:"follow,omitempty"` // keep streaming until the session ends
}

// SessionAttachRequest is the argument of session_attach.
type SessionAttachRequest struct {
	Name string `json:"name"`
	// Replay streams the logs from their start; by default output starts at
	// the current end of each log.
	Replay bool `json:"replay,omitempty"`
}

// SessionStopRequest is the argument of session_stop.
type SessionStopRequest struct {
	Name string `json:"name"`
	// Timeout is how long to wait after SIGTERM before SIGKILL; 0 means 10s.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// SessionKillRequest is the argument of session_kill.
type SessionKillRequest struct {
	Name   string `json:"name"`
	Signal string `json:"signal,omitempty"` // default KILL
}
