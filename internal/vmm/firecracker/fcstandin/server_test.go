package fcstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// rig is an in-process stand-in with files to point it at.
type rig struct {
	t       *testing.T
	s       *Server
	dir     string
	console bytes.Buffer
	exits   chan int
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	cfg.Spec = loadSpec(t)
	dir, err := os.MkdirTemp("", "fcsi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.GuestDir = filepath.Join(dir, "guest")
	r := &rig{t: t, dir: dir, exits: make(chan int, 1)}
	r.s = NewServer(cfg, "vm1", &r.console, func(code int) { r.exits <- code })
	t.Cleanup(func() {
		if r.s.m.vsock != nil {
			r.s.m.vsock.close()
		}
	})
	for _, f := range []string{"vmlinux", "rootfs.ext4", "log", "metrics"} {
		os.WriteFile(r.path(f), nil, 0o600)
	}
	return r
}

func (r *rig) path(name string) string { return filepath.Join(r.dir, name) }

// do sends one request and returns the status and body.
func (r *rig) do(method, path, body string) (int, string) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// ok sends a request that must succeed.
func (r *rig) ok(method, path, body string) string {
	r.t.Helper()
	code, out := r.do(method, path, body)
	if code/100 != 2 {
		r.t.Fatalf("%s %s %s = %d %s", method, path, body, code, out)
	}
	return out
}

// fault sends a request that must fail with want.
func (r *rig) fault(method, path, body, want string) {
	r.t.Helper()
	code, out := r.do(method, path, body)
	var f map[string]any
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		r.t.Fatalf("%s %s = %d %q: not JSON: %v", method, path, code, out, err)
	}
	if code != 400 || len(f) != 1 || f["fault_message"] != want {
		r.t.Errorf("%s %s %s:\n got %d %s\nwant 400 {\"fault_message\":%q}", method, path, body, code, out, want)
	}
}

func (r *rig) configure() {
	r.ok("PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":128}`)
	r.ok("PUT", "/boot-source", `{"kernel_image_path":"`+r.path("vmlinux")+`","boot_args":"console=ttyS0"}`)
	r.ok("PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"`+r.path("rootfs.ext4")+`","is_root_device":true,"is_read_only":false}`)
	r.ok("PUT", "/vsock", `{"guest_cid":3,"uds_path":"`+r.path("v.sock")+`"}`)
}

func TestFaultShape(t *testing.T) {
	r := newRig(t, Config{})
	req := httptest.NewRequest("PUT", "/machine-config", strings.NewReader(`{"vcpu_count":1}`))
	w := httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	if w.Code != 400 {
		t.Fatalf("status = %d, want 400", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got, want := w.Body.String(), `{"fault_message":"`+deser+"missing field `mem_size_mib` at line 1 column 16."+`"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

// TestTransport: what Firecracker's HTTP server cannot parse is refused
// before the body is looked at.
func TestTransport(t *testing.T) {
	r := newRig(t, Config{})
	req := httptest.NewRequest("PUT", "/machine-config", strings.NewReader(`{"vcpu_count":1,"mem_size_mib":128}`))
	req.TransferEncoding = []string{"chunked"}
	w := httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "chunked") {
		t.Errorf("chunked request = %d %s", w.Code, w.Body)
	}
	req = httptest.NewRequest("PUT", "/machine-config", strings.NewReader(`{"vcpu_count":1,"mem_size_mib":128}`))
	req.Header.Set("Content-Type", "text/plain")
	w = httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	if w.Code != 415 {
		t.Errorf("text/plain request = %d %s", w.Code, w.Body)
	}
}

func TestStateMachine(t *testing.T) {
	r := newRig(t, Config{})
	if got := r.ok("GET", "/", ""); !strings.Contains(got, `"state":"Not started"`) {
		t.Errorf("GET / before boot = %s", got)
	}
	r.fault("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, msgPreBoot)
	r.fault("PUT", "/actions", `{"action_type":"FlushMetrics"}`, msgPreBoot)
	r.fault("PATCH", "/vm", `{"state":"Paused"}`, msgPreBoot)
	r.fault("PUT", "/actions", `{"action_type":"InstanceStart"}`, "Start microvm error: Cannot start microvm without kernel configuration.")
	// Firecracker checks vcpu_count itself, in its own words, not as a
	// schema bound.
	const vcpuErr = "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled."
	for _, body := range []string{
		`{"vcpu_count":3,"mem_size_mib":128,"smt":true}`,
		`{"vcpu_count":0,"mem_size_mib":128}`,
		`{"vcpu_count":33,"mem_size_mib":128}`,
	} {
		r.fault("PUT", "/machine-config", body, vcpuErr)
	}
	r.fault("PUT", "/boot-source", `{"kernel_image_path":"`+r.path("missing")+`"}`,
		"Boot source error: The kernel file cannot be opened: no such file or directory")
	r.fault("PUT", "/logger", `{"log_path":"`+r.path("missing")+`"}`,
		"Logger error: Failed to open target file: open "+r.path("missing")+": no such file or directory")
	r.ok("PUT", "/metrics", `{"metrics_path":"`+r.path("metrics")+`"}`)
	r.fault("PUT", "/metrics", `{"metrics_path":"`+r.path("metrics")+`"}`, "Metrics error: Reinitialization of metrics not allowed.")
	r.configure()
	r.fault("PUT", "/drives/work", `{"drive_id":"work","path_on_host":"`+r.path("rootfs.ext4")+`","is_root_device":true,"is_read_only":false}`,
		"Drive config error: A root block device already exists!")
	r.ok("PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0"}`)
	r.fault("PUT", "/network-interfaces/eth1", `{"iface_id":"eth1","host_dev_name":"tap0"}`, "Network config error: The host device name is already in use.")

	r.ok("PUT", "/actions", `{"action_type":"InstanceStart"}`)
	if got := r.ok("GET", "/", ""); !strings.Contains(got, `"state":"Running"`) {
		t.Errorf("GET / after boot = %s", got)
	}
	r.fault("PUT", "/actions", `{"action_type":"InstanceStart"}`, msgPostBoot)
	for _, req := range [][2]string{
		{"/machine-config", `{"vcpu_count":1,"mem_size_mib":128}`},
		{"/boot-source", `{"kernel_image_path":"` + r.path("vmlinux") + `"}`},
		{"/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/x","is_root_device":true,"is_read_only":false}`},
		{"/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0"}`},
		{"/vsock", `{"guest_cid":3,"uds_path":"/tmp/other.sock"}`},
		{"/logger", `{"log_path":"` + r.path("log") + `"}`},
	} {
		r.fault("PUT", req[0], req[1], msgPostBoot)
	}
	r.ok("PUT", "/actions", `{"action_type":"FlushMetrics"}`)
	if data, _ := os.ReadFile(r.path("metrics")); !bytes.Contains(data, []byte("utc_timestamp_ms")) {
		t.Errorf("metrics after FlushMetrics = %q", data)
	}
	if !strings.Contains(r.console.String(), "Command line: console=ttyS0") {
		t.Errorf("console = %q, want the boot messages", r.console.String())
	}
	r.ok("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`)
	if code := <-r.exits; code != 0 {
		t.Errorf("exit after SendCtrlAltDel = %d, want 0", code)
	}
}

func TestFailureInjection(t *testing.T) {
	r := newRig(t, Config{Fail: []Failure{{"PUT", "/drives/{drive_id}", 500, false}, {"PUT", "/vsock", 400, true}}})
	code, out := r.do("PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true}`)
	if code != 500 || !strings.Contains(out, `"fault_message":"Injected failure for PUT /drives/rootfs`) {
		t.Errorf("injected drive failure = %d %s", code, out)
	}
	sock := r.path("v.sock")
	r.fault("PUT", "/vsock", `{"guest_cid":3,"uds_path":"`+sock+`"}`, "Injected failure for PUT /vsock (FCSTANDIN_FAIL).")
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("a failure after the fact did not bind the vsock socket: %v", err)
	}
	r.ok("PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":128}`)
}

func TestVsock(t *testing.T) {
	r := newRig(t, Config{})
	sock := r.path("v.sock")
	os.WriteFile(sock, nil, 0o600)
	r.fault("PUT", "/vsock", `{"guest_cid":3,"uds_path":"`+sock+`"}`,
		`Vsock config error: Cannot create backend for vsock device: UnixBind(Os { code: 98, kind: AddrInUse, message: "Address in use" })`)
	os.Remove(sock)
	r.configure()

	// Before boot nothing listens in the guest: the connection is closed.
	if err := connectOnce(sock, agentproto.DefaultVsockPort); err == nil {
		t.Error("CONNECT before boot was accepted")
	}
	r.ok("PUT", "/actions", `{"action_type":"InstanceStart"}`)
	if err := connectOnce(sock, 5000); err == nil {
		t.Error("CONNECT to a port nobody listens on was accepted")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := agentproto.DialHybridVsock(ctx, sock, agentproto.DefaultVsockPort)
	if err != nil {
		t.Fatal(err)
	}
	c, err := agentproto.NewClient(ctx, conn)
	if err != nil {
		t.Fatalf("agent hello over hybrid vsock: %v", err)
	}
	defer c.Close()
	if c.Agent().Protocol == "" {
		t.Error("agent answered hello without a protocol")
	}
}

// connectOnce does the hybrid vsock handshake once and reports whether
// it was accepted.
func connectOnce(sock string, port uint32) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, "CONNECT "+strconv.FormatUint(uint64(port), 10)+"\n"); err != nil {
		return err
	}
	line := make([]byte, 3)
	if _, err := io.ReadFull(c, line); err != nil {
		return err
	}
	if string(line) != "OK " {
		return &Fault{Status: http.StatusBadGateway, Message: string(line)}
	}
	return nil
}
