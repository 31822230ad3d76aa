package api

import "time"

// ForwardRequest is the body of POST /v1/vms/{name}/forwards.
type ForwardRequest struct {
	Ports []PortSpec `json:"ports"`
	// AnyPort picks a free host port when the asked one (or the guest's
	// port, when none was asked) is taken, instead of failing.
	AnyPort bool `json:"any_port,omitempty"`
	// Detach leaves the forwards to the daemon and answers at once;
	// otherwise they last as long as the request (an NDJSON stream).
	Detach bool `json:"detach,omitempty"`
}

// PortSpec is one [HOST_PORT:]GUEST_PORT of a forward request.
type PortSpec struct {
	HostPort  int `json:"host_port,omitempty"` // 0: the guest port
	GuestPort int `json:"guest_port"`
}

// Forward is one host port forwarded to a guest port through the agent.
type Forward struct {
	VM        string    `json:"vm"`
	HostAddr  string    `json:"host_addr"` // 127.0.0.1:PORT
	HostPort  int       `json:"host_port"`
	GuestPort int       `json:"guest_port"`
	Detached  bool      `json:"detached"`
	CreatedAt time.Time `json:"created_at"`
	Active    int64     `json:"active"` // open connections
	Served    int64     `json:"served"` // connections accepted so far
	// LastError is why the last connection could not reach the guest port.
	LastError string `json:"last_error,omitempty"`
}
