package network

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"banger/api/errdefs"
)

// The egress helper lets a daemon without CAP_NET_ADMIN keep its VMs'
// policies in banger's egress tables: a small root process ('banger system
// egress-helper', installed by 'system setup') owns the tables of one
// user's network and applies what that user's daemon asks over a unix
// socket only that user may open. The protocol is JSON lines, one request
// and one response at a time:
//
//	-> {"v":1,"op":"sync","spec":{...},"vms":[{"addr":"172.16.0.2","policy":{"mode":"allow","allow":["example.org"]},"tap":"banger0-tap0"}]}
//	<- {"v":1}
//	-> {"v":1,"op":"learn","vm":"172.16.0.2","ips":["93.184.215.14"],"ttl":300}
//	<- {"v":1}
//	-> {"v":1,"op":"denied"}
//	<- {"v":1,"denied":[{"Addr":"172.16.0.2","Packets":3}]}
//
// A response with "error" set failed; the message says what to do. A
// request of another version is refused. Requests are hostile input: the
// helper checks them against the user's setup record (validateSync).

// EgressHelperDir holds the helpers' sockets. It is root's; each socket in
// it is owned by its user, mode 0600.
const EgressHelperDir = "/run/banger/egress"

// egressHelperVersion is the protocol's version.
const egressHelperVersion = 1

// Bounds on the protocol: a request or response line, a sync's VMs.
const (
	maxHelperLine = 4 << 20
	maxHelperVMs  = 4096
)

// EgressHelperSocket is the socket of uid's helper for the network in ns.
func EgressHelperSocket(dir string, uid int, ns Namespace) string {
	name := strconv.Itoa(uid)
	if !ns.Host() {
		name += "@" + ns.Key
	}
	return filepath.Join(dir, name+".sock")
}

type helperRequest struct {
	V    int          `json:"v"`
	Op   string       `json:"op"`
	Spec *EgressSpec  `json:"spec,omitempty"`
	VMs  []helperVM   `json:"vms,omitempty"`
	VM   netip.Addr   `json:"vm,omitzero"`
	IPs  []netip.Addr `json:"ips,omitempty"`
	TTL  int64        `json:"ttl,omitempty"` // seconds
}

type helperVM struct {
	Addr   netip.Addr   `json:"addr"`
	Policy EgressPolicy `json:"policy"`
	Tap    string       `json:"tap,omitempty"`
}

type helperResponse struct {
	V      int      `json:"v"`
	Error  string   `json:"error,omitempty"`
	Kind   string   `json:"kind,omitempty"` // errdefs kind of Error
	Denied []Denial `json:"denied,omitempty"`
}

// HelperEgress is the Egress of a daemon without CAP_NET_ADMIN: every call
// goes to the egress helper at socket. It keeps one connection; when the
// helper restarted it reconnects and sends the last sync again before
// anything else (the tables kept the rules; the sync finds them right).
func HelperEgress(socket string) *EgressClient {
	return &EgressClient{socket: socket}
}

// EgressClient talks to an egress helper (HelperEgress).
type EgressClient struct {
	socket string

	mu       sync.Mutex
	conn     net.Conn
	r        *bufio.Reader
	lastSync *helperRequest
}

// Ping reports whether a helper answers at the socket.
func (c *EgressClient) Ping() error {
	_, err := c.call(helperRequest{Op: "ping"})
	return err
}

func (c *EgressClient) Sync(spec EgressSpec, vms []VMEgress) error {
	req := helperRequest{Op: "sync", Spec: &spec}
	for _, v := range vms {
		req.VMs = append(req.VMs, helperVM{Addr: v.Addr, Policy: v.Policy, Tap: v.Tap})
	}
	_, err := c.call(req)
	if err == nil {
		c.mu.Lock()
		c.lastSync = &req
		c.mu.Unlock()
	}
	return err
}

func (c *EgressClient) Learn(vm netip.Addr, ips []netip.Addr, ttl time.Duration) error {
	_, err := c.call(helperRequest{Op: "learn", VM: vm, IPs: ips, TTL: int64(ttl / time.Second)})
	return err
}

func (c *EgressClient) Denied() ([]Denial, error) {
	resp, err := c.call(helperRequest{Op: "denied"})
	return resp.Denied, err
}

// Remove is not the daemon's to do: 'banger system teardown' removes the
// tables with the rest of the network.
func (c *EgressClient) Remove() (bool, error) {
	return false, errdefs.Unsupported("the egress helper keeps banger's egress tables; %s removes them", "'sudo \"$(command -v banger)\" system teardown'")
}

// Close drops the connection.
func (c *EgressClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropLocked()
}

func (c *EgressClient) dropLocked() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.r = nil, nil
	return err
}

// call sends req, reconnecting once (and replaying the last sync) when
// the connection broke.
func (c *EgressClient) call(req helperRequest) (helperResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req.V = egressHelperVersion
	for attempt := 0; ; attempt++ {
		fresh := c.conn == nil
		if fresh {
			// A helper that answered before and broke is restarting:
			// wait for it. A first connection (Ping) is not waited for.
			wait := time.Duration(0)
			if attempt > 0 || c.lastSync != nil {
				wait = helperRestartWait
			}
			if err := c.dialLocked(wait); err != nil {
				return helperResponse{}, err
			}
			if c.lastSync != nil && req.Op != "sync" {
				if _, err := c.roundTrip(*c.lastSync); err != nil {
					c.dropLocked()
					return helperResponse{}, err
				}
			}
		}
		resp, err := c.roundTrip(req)
		var he helperError
		if err == nil || errors.As(err, &he) {
			return resp, err
		}
		c.dropLocked()
		if fresh || attempt > 0 {
			return helperResponse{}, fmt.Errorf("asking the egress helper at %s: %w", c.socket, err)
		}
	}
}

// helperRestartWait is how long a dial waits for a helper that is
// restarting (its socket missing or refusing).
const helperRestartWait = 3 * time.Second

func (c *EgressClient) dialLocked(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	conn, err := net.DialTimeout("unix", c.socket, 2*time.Second)
	for err != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		conn, err = net.DialTimeout("unix", c.socket, 2*time.Second)
	}
	if err != nil {
		return fmt.Errorf("reaching the egress helper at %s: %w; run '%s' (it installs and starts the helper)", c.socket, err, SetupCommand)
	}
	c.conn, c.r = conn, bufio.NewReaderSize(conn, 64<<10)
	return nil
}

// helperError is an error the helper answered (as opposed to a broken
// connection).
type helperError struct{ error }

func (e helperError) Unwrap() error { return e.error }

func (c *EgressClient) roundTrip(req helperRequest) (helperResponse, error) {
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := json.Marshal(req)
	if err != nil {
		return helperResponse{}, err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return helperResponse{}, err
	}
	line, err := readLine(c.r)
	if err != nil {
		return helperResponse{}, err
	}
	var resp helperResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return helperResponse{}, fmt.Errorf("reading the egress helper's answer: %w", err)
	}
	if resp.Error != "" {
		return resp, helperError{errdefs.FromKind(errdefs.Kind(resp.Kind), "egress helper: "+resp.Error)}
	}
	if resp.V != egressHelperVersion {
		return resp, helperError{fmt.Errorf("the egress helper speaks version %d, this daemon %d; restart the helper after upgrading banger (run '%s')", resp.V, egressHelperVersion, SetupCommand)}
	}
	return resp, nil
}

// readLine reads one line of at most maxHelperLine bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxHelperLine {
			return nil, fmt.Errorf("a line longer than %d bytes", maxHelperLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
