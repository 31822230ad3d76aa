package client

import (
	"context"
	"io"
	"net/url"
	"strconv"

	"banger/api"
	"banger/api/stdiomux"
)

func sessionPath(vm, name string) string { return "/vms/" + esc(vm) + "/sessions/" + esc(name) }

// Sessions lists a VM's sessions.
func (c *Client) Sessions(ctx context.Context, vm string) ([]api.Session, error) {
	var out []api.Session
	return out, c.call(ctx, "GET", "/vms/"+esc(vm)+"/sessions", nil, &out)
}

// Session returns one session.
func (c *Client) Session(ctx context.Context, vm, name string) (api.Session, error) {
	var out api.Session
	return out, c.call(ctx, "GET", sessionPath(vm, name), nil, &out)
}

// StartSession checks the guest (cwd, commands) and starts a session.
func (c *Client) StartSession(ctx context.Context, vm string, req api.StartSessionRequest) (api.Session, error) {
	var out api.Session
	return out, c.call(ctx, "POST", "/vms/"+esc(vm)+"/sessions", req, &out)
}

// StopSession sends SIGTERM, then SIGKILL after timeout (0: 10s), and
// returns the ended session.
func (c *Client) StopSession(ctx context.Context, vm, name string, req api.StopSessionRequest) (api.Session, error) {
	var out api.Session
	return out, c.call(ctx, "POST", sessionPath(vm, name)+"/stop", req, &out)
}

// KillSession signals the session (KILL when sig is empty).
func (c *Client) KillSession(ctx context.Context, vm, name, sig string) error {
	return c.call(ctx, "POST", sessionPath(vm, name)+"/kill", api.KillSessionRequest{Signal: sig}, nil)
}

// RemoveSession forgets an ended session and its logs.
func (c *Client) RemoveSession(ctx context.Context, vm, name string) error {
	return c.call(ctx, "DELETE", sessionPath(vm, name), nil, nil)
}

// SessionLogs copies a session's stdout or stderr log to w, following it
// when asked until the session ends or ctx is done.
func (c *Client) SessionLogs(ctx context.Context, vm, name, stream string, follow bool, w io.Writer) error {
	q := url.Values{}
	if stream != "" {
		q.Set("stream", stream)
	}
	q.Set("follow", strconv.FormatBool(follow))
	resp, err := c.do(ctx, "GET", sessionPath(vm, name)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// AttachSession attaches to a session: the daemon opens a stdio_mux_v1
// bridge, which this dials. Closing the Conn detaches.
func (c *Client) AttachSession(ctx context.Context, vm, name string, req api.AttachRequest) (*stdiomux.Conn, api.Bridge, error) {
	var b api.Bridge
	if err := c.call(ctx, "POST", sessionPath(vm, name)+"/attach", req, &b); err != nil {
		return nil, b, err
	}
	conn, err := stdiomux.Dial(ctx, b.Socket)
	return conn, b, err
}

// Exec runs a command in the guest without a PTY, its stdio bridged over
// the returned Conn. Closing the Conn kills the command.
func (c *Client) Exec(ctx context.Context, vm string, req api.ExecRequest) (*stdiomux.Conn, error) {
	var b api.Bridge
	if err := c.call(ctx, "POST", "/vms/"+esc(vm)+"/exec", req, &b); err != nil {
		return nil, err
	}
	return stdiomux.Dial(ctx, b.Socket)
}
