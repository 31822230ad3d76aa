//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"banger/api"
)

// startGuestHTTP serves body at / on the guest's 127.0.0.1:port with
// busybox httpd: loopback only, so nothing but the agent reaches it.
func startGuestHTTP(e *env, vm string, port int, body string) {
	e.t.Helper()
	e.ssh(vm, "sh", "-c", fmt.Sprintf("'mkdir -p /www && echo %s > /www/index.html && busybox httpd -p 127.0.0.1:%d -h /www'", body, port))
}

// curlInNS fetches url with curl from inside the test's namespace.
func curlInNS(e *env, url string) (string, error) {
	out, err := e.inNS("curl", "-sS", "--max-time", "60", url).CombinedOutput()
	return string(out), err
}

// dialableInNS reports whether something accepts on addr in the namespace.
func dialableInNS(e *env, addr string) bool {
	return e.ns.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}) == nil
}

// TestForward: a guest HTTP server on the guest's loopback port 8080
// answers curl on the host's forwarded port, in the foreground until
// Ctrl-C and detached; 100 parallel connections through one forward all
// complete; a detached forward is listed and ends with its VM.
func TestForward(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "fw", "--image", "bb")
	startGuestHTTP(e, "fw", 8080, "hello-forward")

	// Foreground: until Ctrl-C.
	fg := e.start("vm", "forward", "fw", "8080")
	fg.expect("forwarding 127.0.0.1:8080 to port 8080 in vm fw")
	if out, err := curlInNS(e, "http://127.0.0.1:8080/"); err != nil || strings.TrimSpace(out) != "hello-forward" {
		t.Errorf("curl through the foreground forward: %q, %v", out, err)
	}
	fg.cmd.Process.Signal(syscall.SIGINT)
	if code := fg.wait(); code != 0 {
		t.Errorf("vm forward after Ctrl-C: exit %d (stderr %q)", code, fg.stderr)
	}
	if dialableInNS(e, "127.0.0.1:8080") {
		t.Errorf("127.0.0.1:8080 still accepts after the foreground forward ended")
	}

	// Detached, to another host port.
	var fs []api.Forward
	if err := json.Unmarshal([]byte(e.ok("vm", "forward", "fw", "18080:8080", "--detach", "--json")), &fs); err != nil || len(fs) != 1 || fs[0].HostAddr != "127.0.0.1:18080" {
		t.Fatalf("vm forward --detach --json = %+v (%v)", fs, err)
	}
	if out, err := curlInNS(e, "http://127.0.0.1:18080/"); err != nil || strings.TrimSpace(out) != "hello-forward" {
		t.Errorf("curl through the detached forward: %q, %v", out, err)
	}
	// Nothing listens on guest port 9999: the connection is closed and
	// the reason recorded.
	e.ok("vm", "forward", "fw", "19999:9999", "--detach")
	if out, err := curlInNS(e, "http://127.0.0.1:19999/"); err == nil {
		t.Errorf("curl of a forward to a closed guest port succeeded: %q", out)
	}
	if v := e.vm("fw"); len(v.Forwards) != 2 || !strings.Contains(v.Forwards[1].LastError, "nothing listens on tcp port 9999") {
		t.Errorf("vm show forwards = %+v; want both, the second with its refusal", v.Forwards)
	}
	if out := e.ok("vm", "ports", "fw"); !strings.Contains(out, "127.0.0.1:18080") || !strings.Contains(out, "127.0.0.1:19999 is forwarded to port 9999, where nothing listens") {
		t.Errorf("vm ports does not list the forwards:\n%s", out)
	}
	e.ok("vm", "forward", "--stop", "fw", "19999")

	if !parallelGets(t, e, "127.0.0.1:18080", 100, "hello-forward") {
		t.Logf("forwards: %+v", e.vm("fw").Forwards)
	}

	// The forward ends with its VM.
	e.ok("vm", "stop", "fw")
	waitUntil(t, "the forward to end with its vm", 30*time.Second, func() bool { return !dialableInNS(e, "127.0.0.1:18080") })
	if v := e.vm("fw"); len(v.Forwards) != 0 {
		t.Errorf("stopped vm still lists forwards %+v", v.Forwards)
	}
	if _, stderr, code := e.run("vm", "forward", "fw", "8080"); code == 0 || !strings.Contains(stderr, "banger vm start fw") {
		t.Errorf("forward to a stopped vm: exit %d, %q; want an error saying to start it", code, stderr)
	}
}

// parallelGets opens n connections to addr at once (inside the namespace)
// and sends a GET on each concurrently; every one must answer want.
func parallelGets(t *testing.T, e *env, addr string, n int, want string) bool {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	err := e.ns.Do(func() error {
		for range n {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		t.Fatalf("opening %d connections to %s: %v", n, addr, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	t0 := time.Now()
	for i, c := range conns {
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: fw\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
				errs <- fmt.Errorf("connection %d: %d %q, %v", i, resp.StatusCode, b, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		t.Error(err)
	}
	t.Logf("%d parallel connections through one forward: %d failed, %s", n, failed, time.Since(t0).Round(time.Millisecond))
	return failed == 0
}
