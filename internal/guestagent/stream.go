package guestagent

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// stream is one call: the header is read; reply must be called once.
type stream struct {
	net.Conn
	br   *bufio.Reader
	args json.RawMessage
	fw   *agentproto.FrameWriter
}

func (st *stream) decode(v any) error { return decodeArgs(st.args, v) }

// reply writes the reply line: result, or err when it is not nil.
func (st *stream) reply(result any, err error) error {
	rep := agentproto.Reply{Error: agentproto.WireError(err)}
	if err == nil && result != nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			rep.Error = agentproto.WireError(merr)
		}
		rep.Result = b
	}
	return agentproto.WriteLine(st.Conn, rep)
}

// end writes the End frame that closes a streaming call.
func (st *stream) end(e agentproto.End) error { return st.fw.WriteJSON(agentproto.FrameEnd, e) }

func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.Invalid("malformed arguments: %v", err)
	}
	return nil
}

// handler serves one call: simple ones return a result, streaming ones own
// the stream after the header.
type handler struct {
	simple func(ctx context.Context, cn *conn, args json.RawMessage) (any, error)
	stream func(ctx context.Context, cn *conn, st *stream) error
}

// simple adapts a typed function to a handler.
func simple[A any](fn func(context.Context, A) (any, error)) handler {
	return handler{simple: func(ctx context.Context, _ *conn, raw json.RawMessage) (any, error) {
		var a A
		if err := decodeArgs(raw, &a); err != nil {
			return nil, err
		}
		return fn(ctx, a)
	}}
}

// none is the argument type of calls without arguments.
type none struct{}

func (s *Server) serveStream(ctx context.Context, cn *conn, c net.Conn) {
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("call handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	st := &stream{Conn: c, br: bufio.NewReaderSize(c, 64<<10), fw: agentproto.NewFrameWriter(c)}
	var h agentproto.Header
	if err := agentproto.ReadLine(st.br, agentproto.MaxHeaderSize, &h); err != nil {
		st.reply(nil, errdefs.Invalid("malformed request header: %v", err))
		return
	}
	st.args = h.Args
	if h.Call != agentproto.CallHello && !cn.greeted.Load() {
		st.reply(nil, errdefs.Invalid("call %q before hello: send hello first on every connection", h.Call))
		return
	}
	hd, ok := s.calls[h.Call]
	if !ok {
		st.reply(nil, errdefs.Unsupported("unknown call %q (this agent speaks protocol %s)", h.Call, agentproto.ProtocolVersion))
		return
	}
	if hd.simple != nil {
		res, err := hd.simple(ctx, cn, h.Args)
		if err != nil {
			s.log.Debug("call failed", "call", h.Call, "err", err)
		}
		st.reply(res, err)
		return
	}
	if err := hd.stream(ctx, cn, st); err != nil {
		s.log.Debug("streaming call ended", "call", h.Call, "err", err)
	}
}

// conn is the state of one host connection.
type conn struct {
	ctx     context.Context
	greeted atomic.Bool
	mu      sync.Mutex
	next    uint64
	sinks   map[string]*stdinSink
}

func newConn(ctx context.Context) *conn {
	return &conn{ctx: ctx, sinks: make(map[string]*stdinSink)}
}

// addSink registers where a stdin stream for a new ID goes.
func (cn *conn) addSink(prefix string, sk *stdinSink) string {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.next++
	id := prefix + "-" + strconv.FormatUint(cn.next, 10)
	if sk != nil {
		cn.sinks[id] = sk
	}
	return id
}

func (cn *conn) removeSink(id string) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	delete(cn.sinks, id)
}

func (cn *conn) sink(id string) *stdinSink {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.sinks[id]
}
