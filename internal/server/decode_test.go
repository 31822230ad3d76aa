package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestBodyMustBeOneJSONValue: a request body with anything after its JSON
// value is refused as invalid and changes nothing; trailing white space is
// fine.
func TestBodyMustBeOneJSONValue(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	patch := func(body string) (int, string) { return rawPatch(t, w.Layout.SocketPath, "dev", body) }
	for _, body := range []string{
		`{"keep_alive":true}{"keep_alive":false}`,
		`{"keep_alive":true} garbage`,
		`{"keep_alive":true}]`,
		`{"keep_alive":true} 1`,
		"{\"keep_alive\":true}\n\x00",
	} {
		code, msg := patch(body)
		if code != http.StatusBadRequest || !strings.Contains(msg, "after the JSON value") {
			t.Errorf("PATCH %q: %d %s, want 400 naming the trailing data", body, code, msg)
		}
	}
	if vm, err := cl.VM(ctx, "dev"); err != nil || vm.KeepAlive {
		t.Fatalf("a refused body changed the vm: %+v, %v", vm, err)
	}
	if code, msg := patch("{\"keep_alive\":true}\r\n \t\n"); code != http.StatusOK {
		t.Errorf("trailing white space: %d %s, want 200", code, msg)
	}
	if vm, err := cl.VM(ctx, "dev"); err != nil || !vm.KeepAlive {
		t.Errorf("the accepted body did not apply: %+v, %v", vm, err)
	}
}

// rawPatch sends body as it is (no client encoding) in a PATCH of vm to
// the daemon's socket and returns the status and the answer.
func rawPatch(t *testing.T, socket, vm, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, _ := http.NewRequest("PATCH", "http://banger/v1/vms/"+vm, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
