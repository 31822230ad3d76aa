package guestops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
	"banger/internal/agentproto"
	"banger/internal/bridge"
)

// Sessions are the guest agent's: it supervises them, keeps their logs
// and stdin, and remembers them on the guest's disk. The daemon keeps no
// copy, so after a restart it has the same view by asking again.

// Sessions lists a VM's sessions, running or ended.
func (g *Ops) Sessions(ctx context.Context, vm string) ([]api.Session, error) {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return nil, err
	}
	ss, err := cl.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, toSession(vm, s))
	}
	return out, nil
}

// Session returns one session.
func (g *Ops) Session(ctx context.Context, vm, name string) (api.Session, error) {
	ss, err := g.Sessions(ctx, vm)
	if err != nil {
		return api.Session{}, err
	}
	for _, s := range ss {
		if s.Name == name {
			return s, nil
		}
	}
	return api.Session{}, errdefs.NotFound("session %q not found in vm %s; run 'banger vm session list %s' to see its sessions", name, vm, vm)
}

// StartSession checks that the guest has the working directory and the
// commands, then starts the session.
func (g *Ops) StartSession(ctx context.Context, vm string, req api.StartSessionRequest) (api.Session, error) {
	if err := checkStart(req); err != nil {
		return api.Session{}, err
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.Session{}, err
	}
	if old, err := g.Session(ctx, vm, req.Name); err == nil {
		return api.Session{}, errdefs.Conflict("session %q already exists in vm %s (%s); pick another --name, or remove it with 'banger vm session rm %s %s'", req.Name, vm, old.State, vm, req.Name)
	}
	pf := bridge.NewPreflight(vm, req.Name, req.Cwd, req.Argv, req.RequireCommands)
	out, err := cl.Output(ctx, pf.Argv(), req.Env)
	if err != nil {
		return api.Session{}, fmt.Errorf("checking the guest before starting session %q: %w", req.Name, err)
	}
	if err := pf.Check(out); err != nil {
		return api.Session{}, err
	}
	mode := req.StdinMode
	if mode == "" {
		mode = api.SessionDetached
	}
	s, err := cl.StartSession(ctx, agentproto.SessionStart{Name: req.Name, Argv: req.Argv, Env: req.Env, Dir: req.Cwd, Mode: mode})
	if err != nil {
		return api.Session{}, err
	}
	g.events.Event(ctx, "info", "vm/"+vm, fmt.Sprintf("session %s started in vm %s (%s): %s", req.Name, vm, mode, commandLine(req.Argv)))
	return toSession(vm, s), nil
}

func checkStart(req api.StartSessionRequest) error {
	switch {
	case req.Name == "":
		return errdefs.Invalid("a session needs a name; pass --name")
	case len(req.Argv) == 0 || req.Argv[0] == "":
		return errdefs.Invalid("session %q has no command; put it after --, like: -- pi --mode rpc", req.Name)
	case req.Cwd != "" && !path.IsAbs(req.Cwd):
		return errdefs.Invalid("--cwd %q must be an absolute guest path", req.Cwd)
	}
	switch req.StdinMode {
	case "", api.SessionDetached, api.SessionPipe:
	default:
		return errdefs.Invalid("--stdin-mode %q must be %s or %s", req.StdinMode, api.SessionDetached, api.SessionPipe)
	}
	return nil
}

// SessionLogs copies one log of a session (stdout or stderr) to w from
// its start; with follow it keeps going until the session ends or ctx is
// done.
func (g *Ops) SessionLogs(ctx context.Context, vm, name string, req api.SessionLogsRequest, w io.Writer) error {
	if req.Stream != "" && req.Stream != agentproto.StreamStdout && req.Stream != agentproto.StreamStderr {
		return errdefs.Invalid("--stream %q must be stdout or stderr", req.Stream)
	}
	if req.Offset < 0 {
		return errdefs.Invalid("a log offset cannot be negative")
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return err
	}
	err = cl.SessionLogs(ctx, agentproto.SessionLogsRequest{Name: name, Stream: req.Stream, Offset: req.Offset, Follow: req.Follow}, w)
	return g.sessionErr(vm, name, err)
}

// StopSession sends SIGTERM to the session's process group, then SIGKILL
// after timeout (10s when 0), and returns the session once it ended.
func (g *Ops) StopSession(ctx context.Context, vm, name string, timeout time.Duration) (api.Session, error) {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.Session{}, err
	}
	s, err := cl.StopSession(ctx, agentproto.SessionStopRequest{Name: name, Timeout: timeout})
	if err != nil {
		return api.Session{}, g.sessionErr(vm, name, err)
	}
	g.events.Event(ctx, "info", "vm/"+vm, fmt.Sprintf("session %s in vm %s stopped (%s)", name, vm, exitText(s.Exit)))
	return toSession(vm, s), nil
}

// KillSession sends a signal (KILL by default) to the session's process
// group without waiting.
func (g *Ops) KillSession(ctx context.Context, vm, name, signal string) error {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return err
	}
	return g.sessionErr(vm, name, cl.KillSession(ctx, agentproto.SessionKillRequest{Name: name, Signal: signal}))
}

// RemoveSession forgets an ended session and deletes its logs.
func (g *Ops) RemoveSession(ctx context.Context, vm, name string) error {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return err
	}
	if err := cl.RemoveSession(ctx, name); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return errdefs.Conflict("session %q in vm %s is running; stop it first with 'banger vm session stop %s %s'", name, vm, vm, name)
		}
		return g.sessionErr(vm, name, err)
	}
	return nil
}

// sessionErr gives a not-found from the agent a message that says what
// to do.
func (g *Ops) sessionErr(vm, name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) && strings.Contains(err.Error(), "session") {
		return errdefs.NotFound("session %q not found in vm %s; run 'banger vm session list %s' to see its sessions", name, vm, vm)
	}
	return err
}

func toSession(vm string, s agentproto.Session) api.Session {
	out := api.Session{
		VM: vm, Name: s.Name, Argv: s.Argv, Cwd: s.Dir, StdinMode: s.Mode, State: s.State, PID: s.PID,
		StartedAt: s.StartedAt, EndedAt: s.EndedAt, Note: s.Note, StdinOpen: s.StdinOpen, Attached: s.Attached,
	}
	if s.Exit != nil {
		out.Exit = &api.ExitStatus{Code: s.Exit.Code, Signal: s.Exit.Signal}
	}
	return out
}

// commandLine shortens argv for messages: the first line, at most 80
// characters.
func commandLine(argv []string) string {
	s, _, cut := strings.Cut(strings.Join(argv, " "), "\n")
	if len(s) > 80 {
		s, cut = s[:77], true
	}
	if cut {
		s += "..."
	}
	return s
}

func exitText(e *agentproto.ExitStatus) string {
	if e == nil {
		return "exit status unknown"
	}
	return e.String()
}

// bridgeDir holds the per-attach and per-exec sockets.
func (g *Ops) bridgeDir() string { return filepath.Join(g.layout.RuntimeDir, "attach") }

// AttachSession attaches to a session and returns a socket that bridges
// it, in stdio_mux_v1, to the first client of this user that connects.
// Attach is exclusive: while one client is attached (or a socket waits for
// its client), another attach is a conflict. The bridge lives in the
// daemon's lifetime, not the request's.
func (g *Ops) AttachSession(ctx context.Context, vm, name string, req api.AttachRequest) (api.Bridge, error) {
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.Bridge{}, err
	}
	s, err := g.Session(ctx, vm, name)
	if err != nil {
		return api.Bridge{}, err
	}
	b, err := bridge.Listen(g.bridgeDir(), g.log)
	if err != nil {
		return api.Bridge{}, err
	}
	att, err := attachRetrying(ctx, g.life, cl, agentproto.SessionAttachRequest{Name: name, Replay: req.Replay}, b)
	if err != nil {
		b.Close()
		if errors.Is(err, errdefs.ErrConflict) {
			return api.Bridge{}, errdefs.Conflict("session %q in vm %s is already attached; attach is exclusive, so detach the other client first", name, vm)
		}
		return api.Bridge{}, g.sessionErr(vm, name, err)
	}
	s.Attached = true
	r := &bridge.Attached{Att: att, Cl: cl, Name: name, Life: g.life}
	g.bridges.Go(func() { b.Serve(g.life, r, stdiomux.Control{Stdin: s.StdinOpen, Session: &s}, bridge.AcceptWait) })
	return api.Bridge{Socket: b.Path, Protocol: stdiomux.Protocol, Session: &s}, nil
}

// staleAttachWait is how long an attach retries a conflict: the agent
// releases the attachment of a connection that went away (a daemon that
// was killed) only once it notices the connection is gone.
const staleAttachWait = 3 * time.Second

func attachRetrying(ctx, life context.Context, cl *agentproto.Client, req agentproto.SessionAttachRequest, b *bridge.Bridge) (*agentproto.Attachment, error) {
	deadline := time.Now().Add(staleAttachWait)
	for {
		att, err := cl.AttachSession(life, req, b.Stdout(), b.Stderr())
		if !errors.Is(err, errdefs.ErrConflict) || time.Now().After(deadline) {
			return att, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Exec starts argv in the guest, on a PTY when req.TTY, and returns a
// socket that bridges its stdin, stdout, stderr, exit status, signals and
// (with a PTY) window size to one client. The process is killed when the
// client leaves, or never comes.
func (g *Ops) Exec(ctx context.Context, vm string, req api.ExecRequest) (api.Bridge, error) {
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return api.Bridge{}, errdefs.Invalid("exec needs a command")
	}
	if req.Cwd != "" && !path.IsAbs(req.Cwd) {
		return api.Bridge{}, errdefs.Invalid("--cwd %q must be an absolute guest path", req.Cwd)
	}
	for _, kv := range req.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return api.Bridge{}, errdefs.Invalid("--env %q must be KEY=VALUE", kv)
		}
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.Bridge{}, err
	}
	b, err := bridge.Listen(g.bridgeDir(), g.log)
	if err != nil {
		return api.Bridge{}, err
	}
	areq := agentproto.ExecRequest{Argv: req.Argv, Env: req.Env, Dir: req.Cwd, TTY: req.TTY, Rows: req.Rows, Cols: req.Cols, Term: req.Term}
	r, err := bridge.StartExec(g.life, cl, areq, b)
	if err != nil {
		b.Close()
		return api.Bridge{}, err
	}
	g.execOpened(vm, +1)
	g.bridges.Go(func() {
		defer g.execOpened(vm, -1)
		b.Serve(g.life, r, stdiomux.Control{Stdin: true}, bridge.AcceptWait)
		r.Release()
	})
	return api.Bridge{Socket: b.Path, Protocol: stdiomux.Protocol}, nil
}

// execOpened counts exec bridges in use: a client on one (an editor over
// vm acp, a long vm exec) means the VM is in use, whatever its CPU says.
func (g *Ops) execOpened(vm string, delta int) {
	g.execMu.Lock()
	defer g.execMu.Unlock()
	if g.execs[vm] += delta; g.execs[vm] <= 0 {
		delete(g.execs, vm)
	}
}

// OpenExecs counts the exec bridges open on a VM.
func (g *Ops) OpenExecs(vm string) int {
	g.execMu.Lock()
	defer g.execMu.Unlock()
	return g.execs[vm]
}
