package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmp is a minimal client for QEMU's machine protocol: JSON objects over
// a unix socket, one command at a time. Asynchronous events arriving
// between replies are skipped.
type qmp struct {
	conn net.Conn
	rd   *bufio.Reader
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
	QMP   any    `json:"QMP"`
}

// dialQMP connects, reads the greeting and leaves negotiation mode.
func dialQMP(ctx context.Context, path string) (*qmp, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to qmp socket %s: %w", path, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	q := &qmp{conn: conn, rd: bufio.NewReader(conn)}
	if _, err := q.read(); err != nil { // greeting
		conn.Close()
		return nil, fmt.Errorf("reading qmp greeting: %w", err)
	}
	if _, err := q.execute("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) close() error { return q.conn.Close() }

func (q *qmp) read() (qmpReply, error) {
	for {
		line, err := q.rd.ReadBytes('\n')
		if err != nil {
			return qmpReply{}, err
		}
		var r qmpReply
		if err := json.Unmarshal(line, &r); err != nil {
			return qmpReply{}, fmt.Errorf("decoding qmp message %q: %w", line, err)
		}
		if r.Event == "" {
			return r, nil
		}
	}
}

// execute runs one command and returns its "return" value.
func (q *qmp) execute(cmd string, args any) (json.RawMessage, error) {
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	data, _ := json.Marshal(msg)
	if _, err := q.conn.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("sending qmp %s: %w", cmd, err)
	}
	r, err := q.read()
	if err != nil {
		return nil, fmt.Errorf("reading qmp %s reply: %w", cmd, err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("qmp %s: %s: %s", cmd, r.Error.Class, r.Error.Desc)
	}
	return r.Return, nil
}

// qmpDo dials, runs one command and hangs up.
func qmpDo(ctx context.Context, path, cmd string) (json.RawMessage, error) {
	q, err := dialQMP(ctx, path)
	if err != nil {
		return nil, err
	}
	defer q.close()
	return q.execute(cmd, nil)
}

// call runs one command with ctx's deadline, or 10 s when it has none.
func (q *qmp) call(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	q.conn.SetDeadline(dl)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return q.execute(cmd, args)
}
