package mcpserver

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api"
	"banger/api/errdefs"
)

// logsTimeout bounds how long session_logs reads a log.
const logsTimeout = time.Minute

type sessionStartIn struct {
	VM      string            `json:"vm" jsonschema:"name of the VM"`
	Session string            `json:"session" jsonschema:"name for the session, unique in the VM"`
	Command string            `json:"command,omitempty" jsonschema:"shell command line, run with sh -c (give this or argv)"`
	Argv    []string          `json:"argv,omitempty" jsonschema:"program and arguments, run without a shell (give this or command)"`
	Cwd     string            `json:"cwd,omitempty" jsonschema:"absolute guest working directory; /root when omitted"`
	Env     map[string]string `json:"env,omitempty" jsonschema:"environment variables added to the process's"`
}

type sessionIn struct {
	VM      string `json:"vm" jsonschema:"name of the VM"`
	Session string `json:"session" jsonschema:"name of the session"`
}

type sessionLogsIn struct {
	VM       string `json:"vm" jsonschema:"name of the VM"`
	Session  string `json:"session" jsonschema:"name of the session"`
	Stream   string `json:"stream,omitempty" jsonschema:"stdout (default) or stderr"`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"bytes kept from the end of the log; default 65536, at most 1048576"`
}

type sessionStopIn struct {
	VM             string `json:"vm" jsonschema:"name of the VM"`
	Session        string `json:"session" jsonschema:"name of the session"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"seconds between SIGTERM and SIGKILL; default 10"`
}

type sessionView struct {
	Name      string     `json:"name"`
	Argv      []string   `json:"argv"`
	Cwd       string     `json:"cwd,omitempty"`
	State     string     `json:"state" jsonschema:"running or exited"`
	PID       int        `json:"pid"`
	ExitCode  *int       `json:"exit_code,omitempty" jsonschema:"exit status once ended; -1 when a signal killed it"`
	Signal    string     `json:"signal,omitempty"`
	Note      string     `json:"note,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

type sessionsOut struct {
	Sessions []sessionView `json:"sessions"`
}

type logsOut struct {
	Stream    string `json:"stream"`
	Log       string `json:"log"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"earlier output was left out"`
}

func sessionOf(s api.Session) sessionView {
	v := sessionView{Name: s.Name, Cwd: cleanText([]byte(s.Cwd)), State: s.State, PID: s.PID, Note: cleanText([]byte(s.Note)), StartedAt: s.StartedAt, EndedAt: s.EndedAt}
	for _, a := range s.Argv {
		v.Argv = append(v.Argv, cleanText([]byte(a)))
	}
	if s.Exit != nil {
		v.ExitCode, v.Signal = &s.Exit.Code, s.Exit.Signal
	}
	return v
}

func (s *Server) addSessionTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "session_start",
		Description: "Start a long-running process in a VM (a server, a watcher, a long build) that keeps running after " +
			"the call; its stdout and stderr are logged in the guest. Read them with session_logs, end it with session_stop.",
	}, s.sessionStart)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "session_list",
		Description: "List a VM's sessions and whether they still run.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, s.sessionList)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "session_logs",
		Description: "Read the end of a session's stdout or stderr log.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, s.sessionLogs)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "session_stop",
		Description: "Stop a session: SIGTERM, then SIGKILL after timeout_seconds. Returns how it ended.",
	}, s.sessionStop)
}

func (s *Server) sessionStart(ctx context.Context, _ *mcp.CallToolRequest, in sessionStartIn) (*mcp.CallToolResult, sessionView, error) {
	argv, err := commandArgv(in.Command, in.Argv)
	if err != nil {
		return nil, sessionView{}, err
	}
	env, err := envList(in.Env)
	if err != nil {
		return nil, sessionView{}, err
	}
	if in.Session == "" {
		return nil, sessionView{}, errdefs.Invalid("name the session (the \"session\" argument), e.g. \"server\"")
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, sessionView{}, err
	}
	sess, err := s.cl.StartSession(ctx, in.VM, api.StartSessionRequest{Name: in.Session, Argv: argv, Cwd: in.Cwd, Env: env})
	if err != nil {
		return nil, sessionView{}, err
	}
	return nil, sessionOf(sess), nil
}

func (s *Server) sessionList(ctx context.Context, _ *mcp.CallToolRequest, in vmIn) (*mcp.CallToolResult, sessionsOut, error) {
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, sessionsOut{}, err
	}
	list, err := s.cl.Sessions(ctx, in.VM)
	if err != nil {
		return nil, sessionsOut{}, err
	}
	out := sessionsOut{Sessions: []sessionView{}}
	for _, x := range list {
		out.Sessions = append(out.Sessions, sessionOf(x))
	}
	return nil, out, nil
}

func (s *Server) sessionLogs(ctx context.Context, _ *mcp.CallToolRequest, in sessionLogsIn) (*mcp.CallToolResult, logsOut, error) {
	stream := in.Stream
	switch stream {
	case "":
		stream = "stdout"
	case "stdout", "stderr":
	default:
		return nil, logsOut{}, errdefs.Invalid("stream %q is not stdout or stderr", in.Stream)
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, logsOut{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, logsTimeout)
	defer cancel()
	buf := &tailBuffer{limit: outputLimit(in.MaxBytes)}
	if err := s.cl.SessionLogs(ctx, in.VM, in.Session, stream, false, buf); err != nil {
		return nil, logsOut{}, err
	}
	return nil, logsOut{Stream: stream, Log: buf.Text(), Truncated: buf.Truncated()}, nil
}

func (s *Server) sessionStop(ctx context.Context, _ *mcp.CallToolRequest, in sessionStopIn) (*mcp.CallToolResult, sessionView, error) {
	if in.TimeoutSeconds < 0 || in.TimeoutSeconds > 600 {
		return nil, sessionView{}, errdefs.Invalid("timeout_seconds is %d; give 0 (10 seconds) to 600", in.TimeoutSeconds)
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, sessionView{}, err
	}
	sess, err := s.cl.StopSession(ctx, in.VM, in.Session, api.StopSessionRequest{Timeout: time.Duration(in.TimeoutSeconds) * time.Second})
	if err != nil {
		return nil, sessionView{}, err
	}
	return nil, sessionOf(sess), nil
}
