package guestagent

import (
	"context"
	"encoding/json"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/version"
)

func (s *Server) handlers() map[string]handler {
	return map[string]handler{
		agentproto.CallHello:         {simple: s.hello},
		agentproto.CallInfo:          simple(s.info),
		agentproto.CallExec:          {stream: s.exec},
		agentproto.CallStdin:         {stream: s.stdin},
		agentproto.CallCopyIn:        {stream: s.copyIn},
		agentproto.CallCopyOut:       {stream: s.copyOut},
		agentproto.CallPutFiles:      simple(s.putFiles),
		agentproto.CallAuthorizeKey:  simple(s.authorizeKey),
		agentproto.CallHostKey:       simple(s.hostKeys),
		agentproto.CallPorts:         simple(func(context.Context, none) (any, error) { return listPorts("/proc") }),
		agentproto.CallStats:         simple(func(context.Context, none) (any, error) { return readStats("/proc"), nil }),
		agentproto.CallShutdown:      simple(s.shutdown),
		agentproto.CallSessionStart:  simple(s.sessions.start),
		agentproto.CallSessionList:   simple(s.sessions.list),
		agentproto.CallSessionLogs:   {stream: s.sessionLogs},
		agentproto.CallSessionAttach: {stream: s.sessionAttach},
		agentproto.CallSessionStop:   simple(s.sessions.stop),
		agentproto.CallSessionKill:   simple(s.sessions.kill),
		agentproto.CallSessionRemove: simple(s.sessions.remove),
		agentproto.CallSetClock:      simple(s.setClock),
		agentproto.CallReseed:        simple(s.reseed),
		agentproto.CallReidentify:    simple(s.reidentify),
		agentproto.CallDial:          {stream: s.dial},
	}
}

// hello checks the host's protocol version; every other call waits for it.
func (s *Server) hello(ctx context.Context, cn *conn, raw json.RawMessage) (any, error) {
	var h agentproto.Hello
	if err := decodeArgs(raw, &h); err != nil {
		return nil, err
	}
	if err := agentproto.CheckCompatible(h.Protocol); err != nil {
		return nil, err
	}
	cn.greeted.Store(true)
	s.log.Debug("host connected", "host", h.Software, "protocol", h.Protocol)
	return agentproto.Hello{Protocol: agentproto.ProtocolVersion, Software: "banger-vsock-agent " + version.String()}, nil
}

func (s *Server) hostKeys(ctx context.Context, _ none) (any, error) {
	if s.cfg.SSH == nil {
		return nil, errdefs.Unavailable("no ssh server runs in this guest")
	}
	return s.cfg.SSH.HostKeys()
}

// shutdownDelay lets the reply reach the host before the guest goes down.
const shutdownDelay = 100 * time.Millisecond

func (s *Server) shutdown(ctx context.Context, req agentproto.ShutdownRequest) (any, error) {
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
