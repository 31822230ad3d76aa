// Package fcstandin is a stand-in for the firecracker binary, for tests on
// hosts without KVM or Firecracker. It serves Firecracker's HTTP API on
// --api-sock and is as strict as the real one: every body is parsed
// against the API spec (shared/spec/firecracker-api.yaml) the way
// Firecracker's serde_json does, and refused with a 400 and
// {"fault_message": "..."} in Firecracker's words, serde's error and
// position included ("... missing field `vcpu_count` at line 1 column
// 20."); it keeps Firecracker's state machine (pre-boot-only resources,
// InstanceStart once, actions after boot) and the machine's own checks;
// it binds the vsock uds_path at PUT /vsock and answers the hybrid-vsock
// "CONNECT <port>" handshake, relaying port agentproto.DefaultVsockPort to a
// real banger guest agent it runs in-process; it writes metrics lines as
// Firecracker does on FlushMetrics. SendCtrlAltDel makes it exit, as a
// guest powering off ends Firecracker.
//
// Snapshots follow Firecracker's rules: PATCH /vm pauses and resumes
// after boot (a paused guest accepts no vsock connection and moves no
// bytes), PUT /snapshot/create only while paused (it resets the vsock
// device, closing open connections), PUT /snapshot/load only in a fresh
// process with nothing but the logger and metrics configured, with
// exactly one of mem_backend and mem_file_path, the overrides applied,
// and the process exiting when the restore fails part-way. The fake
// guest's memory is a directory holding everything its agent keeps: a
// cold boot starts it empty, a snapshot writes it into the memory file,
// a load restores it, so a restored guest is told from a cold one.
//
// It can be told to fail any request, to crash, to hang, and to record
// every request (see Config and Install). Tests run it as the test binary
// re-executed: TestMain calls RunIfStandIn, and Install writes an
// executable named firecracker that does so with a given Config.
// InstallJailer does the same for a fake of Firecracker's jailer, which
// execs the stand-in into a jail.
package fcstandin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// Config is what the stand-in is told besides Firecracker's own flags.
type Config struct {
	Spec *Spec
	// Fail makes matching requests fail.
	Fail []Failure
	// Crash is "startup" (exit before serving the API), "after-boot"
	// (SIGKILL itself right after answering InstanceStart) or
	// "METHOD /path" (SIGKILL itself on receiving that request).
	Crash string
	// Hang is "METHOD /path": that request is never answered, and the
	// API serves nothing after it, as a wedged VMM.
	Hang string
	// IgnoreCtrlAltDel models a guest without i8042 support: the action
	// is accepted and nothing happens.
	IgnoreCtrlAltDel bool
	// Record, when set, is a file every request is appended to.
	Record string
	// GuestDir holds the in-process agent's state; empty means a
	// temporary directory.
	GuestDir string
	// Version is the Firecracker version to claim.
	Version string
	// Tamper makes the stand-in act as a compromised Firecracker after
	// it writes a snapshot: "memory-symlink=TARGET" replaces the memory
	// file with a symbolic link to TARGET, "memory-link=PATH" with a hard
	// link to PATH (in the VMM's view, e.g. a drive in its jail).
	Tamper string
	// Root is the jail every path in a request is relative to, for a
	// stand-in that could not chroot into it (see InstallJailer); "" is
	// the host's root.
	Root string

	recordFile *os.File // Record, opened at the first request or before entering a jail
}

// DefaultVersion is the Firecracker release the stand-in claims to be.
const DefaultVersion = "1.16.1"

// Failure makes requests to Method and Path (concrete, /drives/rootfs, or
// a template, /drives/{drive_id}) answer Status. With After, the request
// is carried out first (a socket bound, a device added) and then fails.
type Failure struct {
	Method, Path string
	Status       int
	After        bool
}

func (f Failure) String() string {
	s := fmt.Sprintf("%s %s=%d", f.Method, f.Path, f.Status)
	if f.After {
		s += ":after"
	}
	return s
}

// ParseFailures parses "PUT /drives/rootfs=500,PUT /vsock=400:after"; the
// status defaults to 400.
func ParseFailures(s string) ([]Failure, error) {
	var out []Failure
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		req, status, hasStatus := strings.Cut(item, "=")
		method, path, ok := strings.Cut(strings.TrimSpace(req), " ")
		if !ok || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("failure %q is not \"METHOD /path[=STATUS]\"", item)
		}
		f := Failure{Method: strings.ToUpper(method), Path: path, Status: http.StatusBadRequest}
		if rest, ok := strings.CutSuffix(status, ":after"); ok {
			status, f.After = rest, true
		}
		if hasStatus && status != "" {
			n, err := strconv.Atoi(status)
			if err != nil || n < 400 || n > 599 {
				return nil, fmt.Errorf("failure %q: status must be 400 to 599", item)
			}
			f.Status = n
		}
		out = append(out, f)
	}
	return out, nil
}

// Server is one stand-in VMM.
type Server struct {
	cfg     Config
	console io.Writer
	exit    func(code int)

	mu    sync.Mutex // one request at a time, as Firecracker's API thread
	m     *machine
	agent *guestagent.Server
	ctx   context.Context
	// ram is the guest's memory: everything its agent keeps (sessions,
	// files, keys) is in this directory, which a snapshot saves and a
	// load restores, and which a cold boot starts empty.
	ram string
}

// NewServer returns a stand-in VMM with instance id id. Its serial console
// is console; exit ends the "VMM" (os.Exit in the stand-in process).
func NewServer(cfg Config, id string, console io.Writer, exit func(code int)) *Server {
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	s := &Server{cfg: cfg, console: console, exit: exit, ctx: context.Background()}
	s.m = &machine{id: id, version: cfg.Version, vcpus: 1, memMiB: 128, bindVsock: bindVsock, root: cfg.Root, tamper: cfg.Tamper}
	s.m.boot = s.boot
	s.m.ctrlAltDel = s.ctrlAltDel
	s.m.saveGuest = s.saveGuest
	s.m.restoreGuest = s.restoreGuest
	return s
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	status, out, f := 0, any(nil), transportFault(r, body)
	if f == nil {
		status, out, f = s.handle(r.Method, r.URL.Path, body)
	}
	s.record(r.Method, r.URL.Path, body, status, f)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case f != nil:
		body := f.Body()
		// A whole answer, not a chunked one, so that it is complete once
		// flushed even when the VMM exits right after (f.exit).
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(f.Status)
		w.Write(body)
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		data, _ := json.Marshal(out)
		w.WriteHeader(status)
		w.Write(data)
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if f == nil && r.Method == http.MethodPut && r.URL.Path == "/actions" && s.m.started && s.cfg.Crash == "after-boot" {
		s.crash() // once the answer is on its way, like a VMM dying mid-run
	}
	if f != nil && f.exit {
		fmt.Fprintf(s.console, "fcstandin: %s\n", f.Message)
		s.exit(1)
	}
}

// transportFault refuses what Firecracker's HTTP server (micro_http)
// cannot parse: chunked bodies, and bodies that are not JSON by type.
func transportFault(r *http.Request, body []byte) *Fault {
	for _, te := range r.TransferEncoding {
		if te == "chunked" {
			return badRequest("Invalid header. Reason: Transfer-Encoding chunked is not supported.")
		}
	}
	if ct := r.Header.Get("Content-Type"); len(body) > 0 && ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &Fault{Status: http.StatusUnsupportedMediaType, Message: "Unsupported media type: " + ct}
	}
	return nil
}

func (s *Server) handle(method, path string, body []byte) (int, any, *Fault) {
	if s.cfg.Crash == method+" "+path {
		s.crash()
	}
	if s.cfg.Hang == method+" "+path {
		select {} // with s.mu held: every later request waits too
	}
	fl := s.failure(method, path)
	injected := func() *Fault {
		return &Fault{Status: fl.Status, Message: fmt.Sprintf("Injected failure for %s %s (FCSTANDIN_FAIL).", method, path)}
	}
	if fl != nil && !fl.After {
		return 0, nil, injected()
	}
	req, f := s.cfg.Spec.Validate(method, path, body)
	if f != nil {
		return 0, nil, f
	}
	status, out, f := s.m.apply(req)
	if f == nil && fl != nil {
		return 0, nil, injected()
	}
	return status, out, f
}

// failure is the injected failure for a request, if any.
func (s *Server) failure(method, path string) *Failure {
	for i, fl := range s.cfg.Fail {
		if fl.Method != method {
			continue
		}
		if op, _ := s.cfg.Spec.match(method, path); fl.Path == path || (op != nil && fl.Path == op.Path) {
			return &s.cfg.Fail[i]
		}
	}
	return nil
}

// Recorded is one line of the record file.
type Recorded struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status"`
	Fault  string          `json:"fault,omitempty"`
}

func (s *Server) record(method, path string, body []byte, status int, f *Fault) {
	if s.cfg.Record == "" {
		return
	}
	rec := Recorded{Method: method, Path: path, Status: status}
	if json.Valid(body) {
		rec.Body = body
	}
	if f != nil {
		rec.Status, rec.Fault = f.Status, f.Message
	}
	if s.cfg.recordFile == nil { // opened already when entering a jail
		f, err := os.OpenFile(s.cfg.Record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		s.cfg.recordFile = f
	}
	line, _ := json.Marshal(rec)
	s.cfg.recordFile.Write(append(line, '\n'))
}

// boot "starts the guest": boot messages on the console, a guest memory
// that starts empty, and the agent listening on its vsock port.
func (s *Server) boot() {
	fmt.Fprintf(s.console, "[    0.000000] Linux version 6.1.0-fcstandin (banger firecracker stand-in)\n")
	fmt.Fprintf(s.console, "[    0.000000] Command line: %s\n", s.m.bootArgs)
	for _, d := range s.m.drives {
		fmt.Fprintf(s.console, "[    0.100000] virtio_blk: drive %s (%s)\n", d.id, d.path)
	}
	if err := s.freshMemory(); err != nil {
		fmt.Fprintf(s.console, "fcstandin: %v\n", err)
		return
	}
	s.startAgent()
}

// startAgent runs the guest agent over the guest's memory and makes it
// listen on its vsock port.
func (s *Server) startAgent() {
	if s.m.vsock == nil {
		fmt.Fprintf(s.console, "fcstandin: no vsock device; the agent is unreachable\n")
		return
	}
	srv, err := s.guestAgent()
	if err != nil {
		fmt.Fprintf(s.console, "fcstandin: starting the guest agent: %v\n", err)
		return
	}
	s.m.vsock.serve(agentproto.DefaultVsockPort, serveAgent(s.ctx, srv))
	fmt.Fprintf(s.console, "fcstandin: banger agent listening on vsock port %d\n", agentproto.DefaultVsockPort)
}

func (s *Server) guestAgent() (*guestagent.Server, error) {
	dir := s.ram
	srv, err := guestagent.New(guestagent.Config{
		Paths: guestagent.Paths{
			StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "etc"),
			Home: filepath.Join(dir, "home"), SSHDir: filepath.Join(dir, "ssh"),
		},
		InitMode: agentproto.InitModeDev,
		Power: func(reboot bool) error {
			go s.powerOff("reboot: Power down")
			return nil
		},
	})
	s.agent = srv
	return srv, err
}

func (s *Server) ctrlAltDel() {
	if s.cfg.IgnoreCtrlAltDel {
		fmt.Fprintf(s.console, "fcstandin: ctrl-alt-del ignored (no i8042 driver)\n")
		return
	}
	// After the answer: the guest shuts down and, with reboot=k, the VMM exits.
	go func() {
		s.mu.Lock() // held by the request until it is answered
		defer s.mu.Unlock()
		s.powerOff("reboot: Restarting system")
	}()
}

func (s *Server) powerOff(msg string) {
	fmt.Fprintln(s.console, msg)
	s.exit(0)
}

// crash ends the process at once, leaving sockets behind as a VMM killed
// by a signal does.
func (s *Server) crash() {
	fmt.Fprintln(s.console, "fcstandin: crashing")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// Serve serves the API on ln until the process exits.
func (s *Server) Serve(ln net.Listener) error {
	return (&http.Server{Handler: s}).Serve(ln)
}

func appendJSON(path string, v any) {
	line, _ := json.Marshal(v)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	f.Write(append(line, '\n'))
	f.Close()
}
