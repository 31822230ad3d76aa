package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAuthSyncRoutes: PUT sets the list (tools required, [] allowed),
// POST copies now and answers with the files.
func TestAuthSyncRoutes(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	t.Setenv("HOME", t.TempDir()) // no credentials on this host
	w.CreateVM(t, "dev")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", w.Layout.SocketPath)
	}}}
	put := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://banger/v1/vms/dev/auth-sync", strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, msg := put(`{}`); code != http.StatusBadRequest || !strings.Contains(msg, `set \"tools\"`) {
		t.Errorf("PUT without tools: %d %s, want 400 saying to set tools", code, msg)
	}
	if code, msg := put(`{"tools":["codex"]}`); code != http.StatusBadRequest || !strings.Contains(msg, "codex") {
		t.Errorf("PUT with an unknown tool: %d %s, want 400 naming it", code, msg)
	}
	if code, msg := put(`{"tools":[]}`); code != http.StatusOK || !strings.Contains(msg, `"auth_sync":[]`) {
		t.Errorf("PUT []: %d %s, want 200 and an empty list", code, msg)
	}
	res, err := cl.AuthSync(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 0 || !slices.Equal(res.Tools, []string{"opencode", "claude", "pi"}) || len(res.Missing) != 3 {
		t.Errorf("POST auth-sync with auth sync off and no host files = %+v; want every tool asked, nothing copied, three missing", res)
	}
}
