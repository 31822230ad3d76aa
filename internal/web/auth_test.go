package web

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/agentproto"
)

// samplePath turns a route pattern into a request: wildcards become names
// that exist (vm dev, session hello, action stop).
func samplePath(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	if path == "/" { // the catch-all: any other path
		return method, "/nope"
	}
	path = strings.NewReplacer("{$}", "", "{name}", "dev", "{action}", "stop", "{session}", "hello").Replace(path)
	switch {
	case strings.HasSuffix(path, "/confirm"):
		path += "?action=stop"
	case strings.HasSuffix(path, "/log"):
		path += "?stream=stdout"
	case path == "/static/":
		path += "app.js"
	}
	return method, path
}

// probe sends a request from a browser that never logged in and returns
// status and the start of the body; a stream that answers is cut after a
// moment rather than followed.
func (u *ui) probe(t *testing.T, method, path string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // a cut stream keeps what came
	return resp.StatusCode, string(body)
}

// TestEveryRouteNeedsTheToken walks the UI's routes as another local user
// would: with no cookie, a forged cookie, a wrong token, and the form
// token and CSRF cookie of a logged-in browser but not its secret. Every
// route but the static assets refuses, shows nothing and changes nothing.
func TestEveryRouteNeedsTheToken(t *testing.T) {
	u := newUI(t)
	u.w.CreateVM(t, "dev")
	cl, err := u.w.D.Agent(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartSession(context.Background(), agentproto.SessionStart{Name: "hello", Argv: []string{"sh", "-c", "echo secret-output; sleep 600"}}); err != nil {
		t.Fatal(err)
	}
	// What a logged-in page would hand out.
	csrf := u.token(t, "dev", "stop")
	lu, _ := url.Parse(u.url)
	var csrfCookie string
	for _, c := range u.hc.Jar.Cookies(lu) {
		if c.Name == "banger_csrf" {
			csrfCookie = c.String()
		}
	}
	if csrfCookie == "" {
		t.Fatal("the logged-in client has no CSRF cookie")
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": u.url}
	attempts := map[string]func(method, path string) (int, string){
		"no cookie": func(m, p string) (int, string) {
			return u.probe(t, m, p, url.Values{"csrf": {csrf}}, same)
		},
		"forged cookie": func(m, p string) (int, string) {
			h := map[string]string{"Cookie": u.srv.auth.cookie + "=" + strings.Repeat("A", len(u.srv.auth.session))}
			for k, v := range same {
				h[k] = v
			}
			return u.probe(t, m, p, url.Values{"csrf": {csrf}}, h)
		},
		"wrong token": func(m, p string) (int, string) {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			return u.probe(t, m, p+sep+"token="+u.secret[:len(u.secret)-1]+"x", url.Values{"csrf": {csrf}}, same)
		},
		"form token without the secret": func(m, p string) (int, string) {
			h := map[string]string{"Cookie": csrfCookie}
			for k, v := range same {
				h[k] = v
			}
			return u.probe(t, m, p, url.Values{"csrf": {csrf}}, h)
		},
	}
	public := map[string]bool{"GET /static/": true}
	for _, rt := range u.srv.routeTable() {
		method, path := samplePath(rt.pattern)
		methods := []string{method}
		if method == "" {
			methods = []string{"GET", "POST", "DELETE"}
		}
		for _, m := range methods {
			for name, try := range attempts {
				code, body := try(m, path)
				if public[rt.pattern] {
					if code != http.StatusOK {
						t.Errorf("%s %s (%s), a public asset: %d", m, path, name, code)
					}
					continue
				}
				if code != http.StatusUnauthorized || !strings.Contains(body, "banger web") {
					t.Errorf("%s %s (route %q, %s): %d, want 401 naming 'banger web'\n%s", m, path, rt.pattern, name, code, body)
				}
				for _, leak := range []string{"dev", "hello", "secret-output", "csrf"} {
					if strings.Contains(body, leak) {
						t.Errorf("%s %s (%s): the refusal shows %q", m, path, name, leak)
					}
				}
			}
		}
	}
	// A path that only starts like a static file is not one.
	for _, p := range []string{"/static/../vms/dev", "/static/..%2fvms/dev", "/static//../live"} {
		if code, body := u.probe(t, "GET", p, nil, nil); code == http.StatusOK || strings.Contains(body, "dev") {
			t.Errorf("GET %s without the secret: %d\n%s", p, code, body)
		}
	}
	if vm, _ := u.w.D.VM(context.Background(), "dev"); vm.State != api.VMRunning {
		t.Errorf("refused requests changed the vm: %s", vm.State)
	}
	// The static assets hold no data: they are the embedded files.
	for p := range public {
		if p != "GET /static/" {
			t.Errorf("public route %q: only the embedded assets may be public", p)
		}
	}
}

// TestTokenLogsIn: the token in the URL sets a private session cookie and
// sends the browser to the same page without it; a wrong one sets nothing.
func TestTokenLogsIn(t *testing.T) {
	u := newUI(t)
	u.w.CreateVM(t, "dev")
	hc := newClient()
	code, hdr, _ := u.doWith(t, hc, "GET", "/vms/dev?token=nope", nil, nil)
	if code != http.StatusUnauthorized || hdr.Get("Set-Cookie") != "" {
		t.Errorf("wrong token: %d, Set-Cookie %q; want 401 and no cookie", code, hdr.Get("Set-Cookie"))
	}
	code, hdr, _ = u.doWith(t, hc, "GET", "/vms/dev?x=1&token="+u.secret, nil, nil)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/vms/dev?x=1" {
		t.Fatalf("token: %d to %q, want 303 to /vms/dev?x=1", code, hdr.Get("Location"))
	}
	var auth *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == u.srv.auth.cookie {
			auth = c
		}
	}
	if auth == nil || !auth.HttpOnly || auth.SameSite != http.SameSiteStrictMode || auth.Path != "/" || auth.MaxAge != 0 {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Strict, Path=/", auth)
	}
	if strings.Contains(auth.Value, u.secret) {
		t.Error("the cookie holds the token itself")
	}
	if code, _, body := u.doWith(t, hc, "GET", "/vms/dev", nil, nil); code != 200 || !strings.Contains(body, "vm dev") {
		t.Errorf("with the cookie: %d", code)
	}
	// The redirect stays on this UI whatever the path.
	for _, p := range []string{"//evil.example/x", "/\\evil.example/x"} {
		_, hdr, _ := u.doWith(t, newClient(), "GET", p+"?token="+u.secret, nil, nil)
		if loc := hdr.Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
			t.Errorf("%s: redirected to %q", p, loc)
		}
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web-token")
	tok, err := LoadToken(path)
	if err != nil || len(tok) < 20 {
		t.Fatalf("LoadToken = %q, %v", tok, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if again, err := LoadToken(path); err != nil || again != tok {
		t.Errorf("second LoadToken = %q, %v; want the same token", again, err)
	}
	// A token others could read, a malformed one or a link is replaced.
	replace := map[string]func(){
		"world-readable": func() { os.Chmod(path, 0o644) },
		"malformed":      func() { os.WriteFile(path, []byte("short\n"), 0o600) },
		"symlink": func() {
			other := filepath.Join(dir, "other")
			os.WriteFile(other, []byte(tok+"\n"), 0o600)
			os.Remove(path)
			os.Symlink(other, path)
		},
	}
	for name, spoil := range replace {
		spoil()
		got, err := LoadToken(path)
		if err != nil || got == tok || len(got) < 20 {
			t.Errorf("%s: LoadToken = %q, %v; want a new token", name, got, err)
		}
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: token file now %v, %v", name, fi.Mode(), err)
		}
		tok = got
	}
}
