package agentproto

import (
	"strconv"
	"time"
)

// Init modes the agent reports in Info.InitMode.
const (
	InitModePID1    = "pid1"    // the agent is the guest's init
	InitModeService = "service" // the agent runs under the image's init (systemd)
	InitModeDev     = "dev"     // the agent runs by hand, e.g. on a developer host
)

// Info answers the info call. A successful info is the "ready" signal.
type Info struct {
	Agent    string  `json:"agent"`    // agent build version
	Protocol string  `json:"protocol"` // ProtocolVersion of the agent
	Kernel   string  `json:"kernel"`   // uname -r
	Arch     string  `json:"arch"`     // GOARCH of the agent
	OS       string  `json:"os,omitempty"`
	Hostname string  `json:"hostname"`
	BootID   string  `json:"boot_id"`
	Uptime   float64 `json:"uptime"` // seconds since boot
	InitMode string  `json:"init_mode"`
	SSH      string  `json:"ssh"` // "openssh", "builtin" or "off"
	PID      int     `json:"pid"`
}

// ExecRequest is the argument of the exec call.
type ExecRequest struct {
	Argv  []string `json:"argv"`
	Env   []string `json:"env,omitempty"`  // KEY=VALUE, added to a login-like base environment
	Dir   string   `json:"dir,omitempty"`  // default: the user's home
	User  string   `json:"user,omitempty"` // default: the agent's user (root)
	TTY   bool     `json:"tty,omitempty"`
	Rows  uint16   `json:"rows,omitempty"` // initial PTY size
	Cols  uint16   `json:"cols,omitempty"`
	Term  string   `json:"term,omitempty"`  // TERM for a PTY; default xterm-256color
	Stdin bool     `json:"stdin,omitempty"` // the host opens a stdin stream; else stdin is /dev/null
}

// Started is the result of exec and session_attach: the ID a stdin stream
// names.
type Started struct {
	ID  string `json:"id"`
	PID int    `json:"pid,omitempty"`
}

// StdinRequest is the argument of the stdin call: raw bytes follow the reply
// until the host half-closes the stream, which closes the process's stdin.
type StdinRequest struct {
	ID string `json:"id"`
}

// ExitStatus is how a process ended: Code is -1 when a signal killed it.
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

// Success reports a zero exit code.
func (s ExitStatus) Success() bool { return s.Code == 0 && s.Signal == "" }

func (s ExitStatus) String() string {
	if s.Signal != "" {
		return "killed by SIG" + s.Signal
	}
	if s.Code == 0 {
		return "exit status 0"
	}
	return "exit status " + strconv.Itoa(s.Code)
}

// CopyRequest is the argument of copy_in (Path: the directory to extract
// into, created when missing) and copy_out (Path: the file or directory to
// archive; entries are named from its base name).
type CopyRequest struct {
	Path string `json:"path"`
}

// CopyResult ends a copy.
type CopyResult struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"` // regular file content
}

// File is one file of a put_files call.
type File struct {
	Path    string `json:"path"` // under /root; relative paths are taken from /root
	Mode    uint32 `json:"mode"` // permission bits; 0 means 0600
	Content []byte `json:"content"`
}

// PutFilesRequest is the argument of put_files.
type PutFilesRequest struct {
	Files []File `json:"files"`
}

// AuthorizeKeyRequest is the argument of authorize_key.
type AuthorizeKeyRequest struct {
	Key string `json:"key"` // one authorized_keys line
}

// HostKeys answers host_key.
type HostKeys struct {
	Server string   `json:"server"` // "openssh" or "builtin"
	Keys   []string `json:"keys"`   // authorized_keys format, preferred (ed25519) first
}

// Port is one listening socket in the guest.
type Port struct {
	Proto   string `json:"proto"` // tcp, tcp6, udp, udp6
	Addr    string `json:"addr"`
	Port    int    `json:"port"`
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
}

// ShutdownRequest is the argument of shutdown.
type ShutdownRequest struct {
	Reboot bool `json:"reboot,omitempty"`
}

// Stats answers stats. Counters are cumulative since boot.
type Stats struct {
	Time     time.Time  `json:"time"`
	Uptime   float64    `json:"uptime"`
	Load     [3]float64 `json:"load"`
	Procs    int        `json:"procs"`
	CPU      CPUStats   `json:"cpu"`
	Memory   MemStats   `json:"memory"`
	Disks    []Disk     `json:"disks"`
	Networks []NetIf    `json:"networks"`
	// SSHConnections counts established TCP connections to local port 22
	// (sshd or the builtin server): someone is using the VM.
	SSHConnections int `json:"ssh_connections"`
}

// CPUStats are /proc/stat's aggregate counters in clock ticks (USER_HZ).
type CPUStats struct {
	Count   int    `json:"count"`
	User    uint64 `json:"user"`
	Nice    uint64 `json:"nice"`
	System  uint64 `json:"system"`
	Idle    uint64 `json:"idle"`
	IOWait  uint64 `json:"iowait"`
	IRQ     uint64 `json:"irq"`
	SoftIRQ uint64 `json:"softirq"`
	Steal   uint64 `json:"steal"`
}

// MemStats are bytes from /proc/meminfo.
type MemStats struct {
	Total     uint64 `json:"total"`
	Free      uint64 `json:"free"`
	Available uint64 `json:"available"`
	Buffers   uint64 `json:"buffers"`
	Cached    uint64 `json:"cached"`
	SwapTotal uint64 `json:"swap_total"`
	SwapFree  uint64 `json:"swap_free"`
}

// Disk is a mounted block-device filesystem.
type Disk struct {
	Device       string `json:"device"`
	Mount        string `json:"mount"`
	FSType       string `json:"fstype"`
	Total        uint64 `json:"total"`
	Free         uint64 `json:"free"`
	Avail        uint64 `json:"avail"`
	ReadBytes    uint64 `json:"read_bytes"`
	WrittenBytes uint64 `json:"written_bytes"`
}

// NetIf is one interface's counters from /proc/net/dev.
type NetIf struct {
	Name      string `json:"name"`
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
}
