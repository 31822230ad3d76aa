//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"banger/internal/ext4"
	"banger/internal/testutil/fixture"
)

// registerDebianWithOpencode registers the Debian fixture with the real
// opencode binary (from npm) at /usr/local/bin/opencode.
func (e *env) registerDebianWithOpencode(name, opencode string) {
	e.t.Helper()
	k := fixture.DebianKernel(e.t)
	root := fixture.Ext4FromDir(e.t, fixture.DebianRootfs(e.t), 1536)
	data, err := os.ReadFile(opencode)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := ext4.Inject(context.Background(), root, []ext4.File{{Path: "/usr/local/bin/opencode", Mode: 0o755, Data: data}}); err != nil {
		e.t.Fatalf("putting opencode in the rootfs: %v", err)
	}
	e.ok("image", "register", "--name", name, "--rootfs", root, "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
}

// TestACPAndOpencodeService drives the real opencode in a guest: 'banger vm
// acp' completes an ACP initialize exchange over stdio, and 'opencode
// serve' started as a session answers GET /config from the host at
// http://<name>.vm:4096, the name resolved by the daemon's DNS.
func TestACPAndOpencodeService(t *testing.T) {
	opencode := fixture.Opencode(t) // skips without the npm registry
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebianWithOpencode("deb-oc", opencode)
	e.ok("vm", "create", "--name", "oc", "--image", "deb-oc", "--memory", "2G", "--disk-size", "2G")

	// ACP: raw JSON-RPC over the bridge, exit status passed through.
	acp := e.start("vm", "acp", "oc")
	acp.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{}}}`)
	var reply struct {
		ID     int `json:"id"`
		Result struct {
			ProtocolVersion int `json:"protocolVersion"`
			AgentInfo       struct {
				Name string `json:"name"`
			} `json:"agentInfo"`
		} `json:"result"`
		Error json.RawMessage `json:"error"`
	}
	line, ok := <-acp.lines
	if !ok {
		t.Fatalf("vm acp ended (exit %d) without answering; stderr: %s", acp.wait(), acp.stderr)
	}
	if err := json.Unmarshal([]byte(line), &reply); err != nil || reply.ID != 1 || reply.Result.ProtocolVersion != 1 || reply.Error != nil {
		t.Errorf("initialize answer = %q (%v); want a result with protocolVersion 1", line, err)
	}
	t.Logf("opencode acp answered initialize: agent %q", reply.Result.AgentInfo.Name)
	acp.stdin.Close()
	if code := acp.wait(); code != 0 {
		t.Errorf("vm acp after stdin closed: exit %d; want opencode's 0 (stderr %q)", code, acp.stderr)
	}
	if _, stderr, code := e.run("vm", "acp", "oc", "--cwd", "/no/such/dir"); code != 1 || !strings.Contains(stderr, "/no/such/dir") {
		t.Errorf("vm acp --cwd /no/such/dir: exit %d, %q; want the guest's exit status 1 and its message", code, stderr)
	}

	// The opencode service on 0.0.0.0:4096, reached by name from the host.
	e.ok("vm", "session", "start", "oc", "--name", "opencode", "--cwd", "/root", "--",
		"opencode", "serve", "--hostname", "0.0.0.0", "--port", "4096")
	ip := resolveInNS(t, e, "oc.vm")
	if v := e.vm("oc"); v.IP != ip {
		t.Errorf("oc.vm resolves to %s; the vm's address is %s", ip, v.IP)
	}
	status, body := getInNS(t, e, ip+":4096", "oc.vm:4096", "/config")
	if status != http.StatusOK || !json.Valid([]byte(body)) {
		t.Errorf("GET http://oc.vm:4096/config = %d %q; want 200 and JSON (session log: %s)", status, body, e.ok("vm", "session", "logs", "oc", "opencode", "--stream", "stderr"))
	}
	t.Logf("GET http://oc.vm:4096/config: %d %s", status, truncateStr(body, 120))

	// The same service through a forward on the host's loopback: no name,
	// no route to the VM's address.
	e.ok("vm", "forward", "oc", "4096", "--detach")
	status, body = getInNS(t, e, "127.0.0.1:4096", "127.0.0.1:4096", "/config")
	if status != http.StatusOK || !json.Valid([]byte(body)) {
		t.Errorf("GET http://127.0.0.1:4096/config through vm forward = %d %q; want 200 and JSON", status, body)
	}
}
