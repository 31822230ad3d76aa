package guest

import (
	"context"
	"encoding/json"
	"time"

	"banger/internal/agent"
	"banger/internal/errdefs"
	"banger/internal/version"
)

func (s *Server) handlers() map[string]handler {
	return map[string]handler{
		agent.CallHello:         {simple: s.hello},
		agent.CallInfo:          simple(s.info),
		agent.CallExec:          {stream: s.exec},
		agent.CallStdin:         {stream: s.stdin},
		agent.CallCopyIn:        {stream: s.copyIn},
		agent.CallCopyOut:       {stream: s.copyOut},
		agent.CallPutFiles:      simple(s.putFiles),
		agent.CallAuthorizeKey:  simple(s.authorizeKey),
		agent.CallHostKey:       simple(s.hostKeys),
		agent.CallPorts:         simple(func(context.Context, none) (any, error) { return listPorts("/proc") }),
		agent.CallStats:         simple(func(context.Context, none) (any, error) { return readStats("/proc"), nil }),
		agent.CallShutdown:      simple(s.shutdown),
		agent.CallSessionStart:  simple(s.sessions.start),
		agent.CallSessionList:   simple(s.sessions.list),
		agent.CallSessionLogs:   {stream: s.sessionLogs},
		agent.CallSessionAttach: {stream: s.sessionAttach},
		agent.CallSessionStop:   simple(s.sessions.stop),
		agent.CallSessionKill:   simple(s.sessions.kill),
		agent.CallSessionRemove: simple(s.sessions.remove),
	}
}

// hello checks the host's protocol version; every other call waits for it.
func (s *Server) hello(ctx context.Context, cn *conn, raw json.RawMessage) (any, error) {
	var h agent.Hello
	if err := decodeArgs(raw, &h); err != nil {
		return nil, err
	}
	if err := agent.CheckCompatible(h.Protocol); err != nil {
		return nil, err
	}
	cn.greeted.Store(true)
	s.log.Debug("host connected", "host", h.Software, "protocol", h.Protocol)
	return agent.Hello{Protocol: agent.ProtocolVersion, Software: "banger-vsock-agent " + version.String()}, nil
}

func (s *Server) hostKeys(ctx context.Context, _ none) (any, error) {
	if s.cfg.SSH == nil {
		return nil, errdefs.Unavailable("no ssh server runs in this guest")
	}
	return s.cfg.SSH.HostKeys()
}

// shutdownDelay lets the reply reach the host before the guest goes down.
const shutdownDelay = 100 * time.Millisecond

func (s *Server) shutdown(ctx context.Context, req agent.ShutdownRequest) (any, error) {
	if s.cfg.Power == nil {
		return nil, errdefs.Unsupported("this agent does not control the machine (it runs in %s mode)", s.cfg.InitMode)
	}
	go func() {
		time.Sleep(shutdownDelay)
		if err := s.cfg.Power(req.Reboot); err != nil {
			s.log.Error("shutting down", "reboot", req.Reboot, "err", err)
		}
	}()
	return nil, nil
}
