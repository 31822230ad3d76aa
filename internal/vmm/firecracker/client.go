package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client speaks Firecracker's HTTP API on its unix socket. Requests are
// sent one at a time, each on a fresh connection, which is what the API
// server expects and what survives the VMM restarting its listener.
type Client struct {
	// Timeout bounds each request (0: only the caller's context does).
	Timeout time.Duration

	sock string
	http *http.Client
}

// NewClient returns a client for the API socket at sock, with requests
// bounded by DefaultAPITimeout.
func NewClient(sock string) *Client {
	tr := &http.Transport{
		// Not following a link: under the jailer the socket is in the
		// jail's chroot (see dialSocket).
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialSocket(ctx, sock, "the api socket")
		},
		DisableKeepAlives: true,
	}
	return &Client{Timeout: DefaultAPITimeout, sock: sock, http: &http.Client{Transport: tr}}
}

// errNoAnswer is the cause of a request that hit Client.Timeout.
var errNoAnswer = errors.New("no answer in time")

// APIError is a non-2xx answer: Firecracker's fault_message and status.
type APIError struct {
	Method, Path string
	StatusCode   int
	FaultMessage string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("firecracker answered %s %s with %d: %s", e.Method, e.Path, e.StatusCode, e.FaultMessage)
}

// PutMachineConfig sets vCPUs and memory. Pre-boot only.
func (c *Client) PutMachineConfig(ctx context.Context, mc MachineConfig) error {
	return c.do(ctx, http.MethodPut, "/machine-config", mc, nil)
}

// PutBootSource sets the kernel, initrd and command line. Pre-boot only.
func (c *Client) PutBootSource(ctx context.Context, bs BootSource) error {
	return c.do(ctx, http.MethodPut, "/boot-source", bs, nil)
}

// PutDrive adds a block device. Pre-boot only.
func (c *Client) PutDrive(ctx context.Context, d Drive) error {
	return c.do(ctx, http.MethodPut, "/drives/"+d.DriveID, d, nil)
}

// PutNetworkInterface adds a virtio-net device on a TAP. Pre-boot only.
func (c *Client) PutNetworkInterface(ctx context.Context, n NetworkInterface) error {
	return c.do(ctx, http.MethodPut, "/network-interfaces/"+n.IfaceID, n, nil)
}

// PutVsock adds the vsock device; Firecracker binds v.UdsPath. Pre-boot only.
func (c *Client) PutVsock(ctx context.Context, v Vsock) error {
	return c.do(ctx, http.MethodPut, "/vsock", v, nil)
}

// PutLogger points Firecracker's own log at an existing file or FIFO.
func (c *Client) PutLogger(ctx context.Context, l Logger) error {
	return c.do(ctx, http.MethodPut, "/logger", l, nil)
}

// PutMetrics points the metrics at an existing file or FIFO.
func (c *Client) PutMetrics(ctx context.Context, m Metrics) error {
	return c.do(ctx, http.MethodPut, "/metrics", m, nil)
}

// Action runs one of the Action* actions.
func (c *Client) Action(ctx context.Context, actionType string) error {
	return c.do(ctx, http.MethodPut, "/actions", InstanceActionInfo{ActionType: actionType}, nil)
}

// PatchVM pauses (VMPaused) or resumes (VMResumed) a booted VM.
func (c *Client) PatchVM(ctx context.Context, state string) error {
	return c.do(ctx, http.MethodPatch, "/vm", VM{State: state}, nil)
}

// CreateSnapshot writes a paused VM's state and memory. Post-boot only.
func (c *Client) CreateSnapshot(ctx context.Context, p SnapshotCreateParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/create", p, nil)
}

// LoadSnapshot restores a VM into a fresh Firecracker. If the restore
// fails part-way, Firecracker exits after answering.
func (c *Client) LoadSnapshot(ctx context.Context, p SnapshotLoadParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/load", p, nil)
}

// InstanceInfo is GET /: the instance's id, state and version.
func (c *Client) InstanceInfo(ctx context.Context) (InstanceInfo, error) {
	var ii InstanceInfo
	err := c.do(ctx, http.MethodGet, "/", nil, &ii)
	return ii, err
}

// Version is GET /version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v Version
	err := c.do(ctx, http.MethodGet, "/version", nil, &v)
	return v.FirecrackerVersion, err
}

// MachineConfig is GET /machine-config.
func (c *Client) MachineConfig(ctx context.Context) (MachineConfig, error) {
	var mc MachineConfig
	err := c.do(ctx, http.MethodGet, "/machine-config", nil, &mc)
	return mc, err
}

// do sends one request. A 2xx answer decodes into out (when non-nil); any
// other answer becomes an *APIError carrying fault_message.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, errNoAnswer)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, body)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if context.Cause(ctx) == errNoAnswer {
			return fmt.Errorf("sending %s %s to %s: firecracker did not answer within %s: %w", method, path, c.sock, c.Timeout, context.DeadlineExceeded)
		}
		return fmt.Errorf("sending %s %s to %s: %w", method, path, c.sock, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var f fault
		if json.Unmarshal(data, &f) != nil || f.FaultMessage == "" {
			f.FaultMessage = strings.TrimSpace(string(data))
		}
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, FaultMessage: f.FaultMessage}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}
