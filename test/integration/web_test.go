package integration

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestWebTokenURL: 'banger web' prints the UI's URL with the token kept in
// the private token file; the UI refuses the bare URL, logs a browser in
// with the token, and keeps the same token across daemon restarts.
func TestWebTokenURL(t *testing.T) {
	h := newHarness(t)
	h.writeConfig("web_listen_addr = \"127.0.0.1:0\"\n")
	h.startDaemon()
	raw := strings.TrimSpace(h.ok("web"))
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Query().Get("token") == "" {
		t.Fatalf("banger web printed %q; want an http URL with a token", raw)
	}
	tok := u.Query().Get("token")
	data, err := os.ReadFile(h.layout.WebToken)
	if err != nil || strings.TrimSpace(string(data)) != tok {
		t.Errorf("token file %s = %q, %v; want the URL's token", h.layout.WebToken, data, err)
	}
	if fi, err := os.Stat(h.layout.WebToken); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, %v; want 0600", fi.Mode(), err)
	}
	// Status output gets pasted into bug reports: it shows the address
	// and where the login URL is, never the token.
	if st := h.ok("daemon", "status"); strings.Contains(st, tok) || !strings.Contains(st, "http://"+u.Host) || !strings.Contains(st, "banger web") {
		t.Errorf("daemon status shows the token, or not the UI's address and 'banger web':\n%s", st)
	}
	if st := h.ok("daemon", "status", "--json"); strings.Contains(st, tok) {
		t.Errorf("daemon status --json shows the token:\n%s", st)
	}

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(s string) *http.Response {
		t.Helper()
		resp, err := hc.Get(s)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bare := u.Scheme + "://" + u.Host + "/"
	if resp := get(bare); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s without the token: %d, want 401", bare, resp.StatusCode)
	}
	if resp := get(raw); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 || resp.Header.Get("Location") != "/" {
		t.Errorf("GET with the token: %d to %q, cookies %v; want 303 to / with a cookie", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}

	h.ok("daemon", "stop")
	h.startDaemon()
	if again := strings.TrimSpace(h.ok("web")); !strings.Contains(again, "token="+tok) {
		t.Errorf("after a restart banger web printed %q; want the same token", again)
	}

	h.ok("daemon", "stop")
	h.writeConfig("web_listen_addr = \"\"\n")
	h.startDaemon()
	if _, errOut, code := h.banger("web"); code == 0 || !strings.Contains(errOut, "web_listen_addr") {
		t.Errorf("banger web with the UI off: exit %d, %q; want an error naming web_listen_addr", code, errOut)
	}
}
