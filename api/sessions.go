package api

import (
	"strconv"
	"time"
)

// Session stdin modes.
const (
	SessionDetached = "detached" // stdin is /dev/null
	SessionPipe     = "pipe"     // the guest keeps a stdin pipe open for attach
)

// Session states.
const (
	SessionRunning = "running"
	SessionExited  = "exited"
)

// StdioMuxV1 names the framing spoken on attach and exec sockets
// (docs/stdio_mux_v1.md).
const StdioMuxV1 = "stdio_mux_v1"

// StartSessionRequest is the body of POST /v1/vms/{name}/sessions.
type StartSessionRequest struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	// Cwd is the guest working directory; root's home when empty.
	Cwd string   `json:"cwd,omitempty"`
	Env []string `json:"env,omitempty"` // KEY=VALUE
	// StdinMode is SessionDetached (default) or SessionPipe.
	StdinMode string `json:"stdin_mode,omitempty"`
	// RequireCommands must resolve in the guest PATH, like Argv[0], or
	// the session is not started.
	RequireCommands []string `json:"require_commands,omitempty"`
}

// Session is a long-lived guest process the daemon manages.
type Session struct {
	VM        string      `json:"vm"`
	Name      string      `json:"name"`
	Argv      []string    `json:"argv"`
	Cwd       string      `json:"cwd,omitempty"`
	StdinMode string      `json:"stdin_mode"`
	State     string      `json:"state"`
	PID       int         `json:"pid"`
	StartedAt time.Time   `json:"started_at"`
	EndedAt   *time.Time  `json:"ended_at,omitempty"`
	Exit      *ExitStatus `json:"exit,omitempty"` // nil while running or when unknown (see Note)
	Note      string      `json:"note,omitempty"`
	StdinOpen bool        `json:"stdin_open"` // pipe mode: the session's stdin is still open
	Attached  bool        `json:"attached"`   // a client is attached now
}

// ExitStatus is how a guest process ended; Code is -1 when a signal
// killed it.
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

// String says how the process ended, as a shell would.
func (s ExitStatus) String() string {
	if s.Signal != "" {
		return "killed by SIG" + s.Signal
	}
	return "exit status " + strconv.Itoa(s.Code)
}

// StopSessionRequest is the body of POST .../sessions/{session}/stop.
type StopSessionRequest struct {
	// Timeout between SIGTERM and SIGKILL; 0 means 10s.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// KillSessionRequest is the body of POST .../sessions/{session}/kill.
type KillSessionRequest struct {
	Signal string `json:"signal,omitempty"` // default KILL
}

// AttachRequest is the body of POST .../sessions/{session}/attach.
type AttachRequest struct {
	// Replay sends the session's logs from their start before live output.
	Replay bool `json:"replay,omitempty"`
}

// ExecRequest is the body of POST /v1/vms/{name}/exec: a guest command
// whose stdio is bridged over a stdio_mux_v1 socket. With TTY it runs on a
// pseudo-terminal of Rows x Cols (stdout and stderr merged, TERM set to
// Term or xterm-256color).
type ExecRequest struct {
	Argv []string `json:"argv"`
	Cwd  string   `json:"cwd,omitempty"`
	Env  []string `json:"env,omitempty"`
	TTY  bool     `json:"tty,omitempty"`
	Rows uint16   `json:"rows,omitempty"`
	Cols uint16   `json:"cols,omitempty"`
	Term string   `json:"term,omitempty"`
}

// Bridge answers attach and exec: a unix socket, private to the daemon's
// user, that accepts one client speaking Protocol for a short while.
type Bridge struct {
	Socket   string   `json:"socket"`
	Protocol string   `json:"protocol"` // StdioMuxV1
	Session  *Session `json:"session,omitempty"`
}

// SessionLogsRequest says which log of a session to read: Stream is
// stdout (the default) or stderr; reading starts Offset bytes in; Follow
// keeps reading until the session ends.
type SessionLogsRequest struct {
	Stream string
	Offset int64
	Follow bool
}
