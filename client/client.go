// Package client is the Go client of bangerd's API (the types are in
// banger/api). The banger CLI uses it, and so can any Go program of the
// same user: New(socket) with DefaultSocket() talks to that user's daemon.
//
// The package is versioned with the API: the daemon serves /v1/, and a
// breaking change to either comes with a new path.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/paths"
)

// Client calls one daemon over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the daemon listening on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// DefaultSocket is the socket of the current user's daemon, found the way
// the CLI finds it ($XDG_RUNTIME_DIR and the XDG directories).
func DefaultSocket() (string, error) {
	l, err := paths.FromEnv()
	if err != nil {
		return "", err
	}
	return l.SocketPath, nil
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// IsNotRunning reports whether err means no daemon answers on the socket.
func IsNotRunning(err error) bool { return errors.Is(err, errdefs.ErrUnavailable) }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	if body == nil {
		return c.send(ctx, method, path, nil, "")
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, path, bytes.NewReader(data), "application/json")
}

// send makes a call with body rd of type contentType (none when rd is
// nil), naming a daemon that does not answer as not running.
func (c *Client) send(ctx context.Context, method, path string, rd io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://bangerd/"+api.Version+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errdefs.Unavailable("bangerd is not running (no daemon on %s); start it with 'banger daemon start'", c.socket)
		}
		return nil, fmt.Errorf("calling bangerd on %s: %w", c.socket, err)
	}
	return resp, nil
}

// call performs a plain JSON call, decoding the answer into out (if set).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding bangerd reply to %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var e api.Error
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(data, &e); err != nil || e.Message == "" {
		return fmt.Errorf("bangerd answered %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return errdefs.FromKind(e.Kind, e.Message)
}

// stream performs a streamed call: events go to onEvent (may be nil), the
// final result is decoded into out.
func (c *Client) stream(ctx context.Context, method, path string, body, out any, onEvent func(api.Event)) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var f struct {
			Event  *api.Event      `json:"event"`
			Result json.RawMessage `json:"result"`
			Error  *api.Error      `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return fmt.Errorf("decoding bangerd progress stream: %w", err)
		}
		switch {
		case f.Error != nil:
			return errdefs.FromKind(f.Error.Kind, f.Error.Message)
		case f.Result != nil:
			if out == nil {
				return nil
			}
			return json.Unmarshal(f.Result, out)
		case f.Event != nil && onEvent != nil:
			onEvent(*f.Event)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading bangerd progress stream: %w", err)
	}
	return errors.New("bangerd closed the stream without a result; see 'banger daemon logs'")
}

func forceQuery(force bool) string {
	if !force {
		return ""
	}
	return "?force=" + strconv.FormatBool(force)
}

func esc(s string) string { return url.PathEscape(s) }
