package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/daemon"
	"banger/internal/daemon/daemontest"
)

// ui is the web UI served on loopback over an in-process daemon with the
// fake VMM driver.
type ui struct {
	w      *daemontest.World
	srv    *Server
	url    string       // without the token
	secret string       // the user's secret
	hc     *http.Client // logged in: keeps cookies, does not follow redirects
}

// testToken is the secret of every test UI.
const testToken = "test-token-0123456789abcdef"

func newUI(t *testing.T) *ui {
	t.Helper()
	w := daemontest.New(t, func(o *daemon.Options) { o.Config.StatsPollInterval = 100 * time.Millisecond })
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(w.D, ln, testToken, Options{Refresh: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	u := &ui{w: w, srv: srv, url: ln.URL, secret: testToken, hc: newClient()}
	resp, err := u.hc.Get(TokenURL(u.url, u.secret))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logging in: %d", resp.StatusCode)
	}
	return u
}

// newClient keeps cookies and does not follow redirects.
func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request as the logged-in user, with extra headers, and
// returns status and body.
func (u *ui) do(t *testing.T, method, path string, form url.Values, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	return u.doWith(t, u.hc, method, path, form, hdr)
}

// doWith is do with another client (another browser, another user).
func (u *ui) doWith(t *testing.T, hc *http.Client, method, path string, form url.Values, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token loads the confirmation page of action and returns its form token.
func (u *ui) token(t *testing.T, vm, action string) string {
	t.Helper()
	code, _, body := u.do(t, "GET", "/vms/"+vm+"/confirm?action="+action, nil, nil)
	m := tokenRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("confirm page: %d, no token in:\n%s", code, body)
	}
	return m[1]
}

func TestHostRule(t *testing.T) {
	tests := []struct {
		configured, host string
		want             bool
	}{
		{"127.0.0.1", "127.0.0.1:7777", true},
		{"127.0.0.1", "localhost:7777", true},
		{"127.0.0.1", "LOCALHOST:7777", true},
		{"127.0.0.1", "[::1]:7777", true},
		{"127.0.0.1", "127.0.0.1:8080", false},
		{"127.0.0.1", "127.0.0.1", false}, // port 80 implied
		{"127.0.0.1", "evil.example:7777", false},
		{"127.0.0.1", "localhost.evil.example:7777", false},
		{"127.0.0.1", "192.168.1.5:7777", false},
		{"localhost", "localhost:7777", true},
		{"devbox.lan", "devbox.lan:7777", true},
		{"devbox.lan", "evil.example:7777", false},
		{"192.168.1.5", "192.168.1.5:7777", true},
		{"192.168.1.5", "10.0.0.1:7777", false},
		{"0.0.0.0", "10.0.0.1:7777", true}, // every address is ours
		{"0.0.0.0", "evil.example:7777", false},
		{"", "[fe80::1]:7777", true},
	}
	for _, tt := range tests {
		if got := newHostRule(tt.configured, "7777").allows(tt.host); got != tt.want {
			t.Errorf("configured %q, Host %q: allowed = %v, want %v", tt.configured, tt.host, got, tt.want)
		}
	}
}

func TestListenURL(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:0": "http://127.0.0.1:", "localhost:0": "http://localhost:", "[::1]:0": "http://[::1]:"} {
		ln, err := Listen(addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", addr, err)
			continue
		}
		if !strings.HasPrefix(ln.URL, want) || ln.Exposed {
			t.Errorf("Listen(%s) URL %s exposed %v; want %s<port>, not exposed", addr, ln.URL, ln.Exposed, want)
		}
		ln.Close()
	}
	ln, err := Listen("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !ln.Exposed || !strings.HasPrefix(ln.URL, "http://127.0.0.1:") {
		t.Errorf("Listen(0.0.0.0:0) = %s exposed %v; want a loopback URL and exposed", ln.URL, ln.Exposed)
	}
}

func TestForeignHostRefused(t *testing.T) {
	u := newUI(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(u.url, "http://"), ":")
	// Cookies follow the Host a browser asked for, so each host logs in
	// with the token: a host the UI answers gets the cookie and a redirect.
	for host, want := range map[string]int{
		"127.0.0.1:" + port:        303,
		"localhost:" + port:        303,
		"evil.example:" + port:     403,
		"rebind.attacker.test":     403,
		"127.0.0.1.nip.io:" + port: 403,
	} {
		code, hdr, body := u.doWith(t, newClient(), "GET", "/?token="+u.secret, nil, map[string]string{"Host": host})
		if code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
		if hdr.Get("Content-Security-Policy") == "" || hdr.Get("X-Frame-Options") != "DENY" {
			t.Errorf("Host %s: security headers missing: %v", host, hdr)
		}
		if want == 403 && (strings.Contains(body, "<table") || hdr.Get("Set-Cookie") != "") {
			t.Errorf("Host %s: refused response still shows the page or logs in", host)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	u := newUI(t)
	for _, path := range []string{"/", "/static/app.js", "/nope", "/vms/missing"} {
		_, hdr, _ := u.do(t, "GET", path, nil, nil)
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := hdr.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		csp := hdr.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	_, _, body := u.do(t, "GET", "/", nil, nil)
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+="|style="`).MatchString(body) {
		t.Error("the page has inline script, an event handler attribute or an inline style; the CSP would block it")
	}
}

func TestCrossOriginAndTokenlessPostsRefused(t *testing.T) {
	u := newUI(t)
	u.w.CreateVM(t, "dev")
	tok := u.token(t, "dev", "stop")
	form := url.Values{"csrf": {tok}}
	for name, hdr := range map[string]map[string]string{
		"cross-site fetch": {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
		"same-site port":   {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"},
		"foreign origin":   {"Origin": "http://evil.example"},
	} {
		if code, _, _ := u.do(t, "POST", "/vms/dev/stop", form, hdr); code != 403 {
			t.Errorf("%s: POST answered %d, want 403", name, code)
		}
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": u.url}
	if code, _, _ := u.do(t, "POST", "/vms/dev/stop", url.Values{}, same); code != 403 {
		t.Errorf("POST without a token answered %d, want 403", code)
	}
	if code, _, _ := u.do(t, "POST", "/vms/dev/stop", url.Values{"csrf": {"forged"}}, same); code != 403 {
		t.Errorf("POST with a forged token answered %d, want 403", code)
	}
	if vm, _ := u.w.D.VM(context.Background(), "dev"); vm.State != api.VMRunning {
		t.Fatalf("a refused request changed the vm: %s", vm.State)
	}
	code, hdr, _ := u.do(t, "POST", "/vms/dev/stop", form, same)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/vms/dev" {
		t.Fatalf("same-origin POST with the token: %d to %q, want 303 to /vms/dev", code, hdr.Get("Location"))
	}
	u.w.WaitState(t, "dev", api.VMStopped)
	if code, _, _ := u.do(t, "POST", "/vms/dev/stop", form, same); code != http.StatusConflict {
		t.Errorf("stopping a stopped vm answered %d, want 409", code)
	}
	if code, _, _ := u.do(t, "GET", "/vms/dev/confirm?action=stop", nil, nil); code != http.StatusConflict {
		t.Errorf("confirming a stop of a stopped vm answered %d, want 409", code)
	}
	code, hdr, _ = u.do(t, "POST", "/vms/dev/delete", form, same)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Fatalf("delete: %d to %q", code, hdr.Get("Location"))
	}
	waitFor(t, "the vm to be deleted", func() bool { _, err := u.w.D.VM(context.Background(), "dev"); return err != nil })
}

func TestPagesRender(t *testing.T) {
	u := newUI(t)
	ctx := context.Background()
	u.w.CreateVM(t, "dev")
	cl, err := u.w.D.Agent(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartSession(ctx, agentproto.SessionStart{Name: "hello", Argv: []string{"sh", "-c", "echo hello from the guest; echo oops >&2"}}); err != nil {
		t.Fatal(err)
	}
	pages := map[string][]string{
		"/":                            {`data-vm="dev"`, "default", "vm dev created and running", `id="vm-row"`},
		"/vms/dev":                     {"vm dev", `href="/vms/dev/sessions/hello"`, "echo hello from the guest", "confirm?action=stop"},
		"/vms/dev/confirm?action=stop": {"stop vm dev?", `action="/vms/dev/stop"`, `name="csrf"`},
		"/vms/dev/sessions/hello":      {"session hello", `data-log="/vms/dev/sessions/hello/log?stream=stdout"`},
	}
	for path, wants := range pages {
		code, _, body := u.do(t, "GET", path, nil, nil)
		if code != 200 {
			t.Errorf("GET %s: %d\n%s", path, code, body)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s lacks %q", path, want)
			}
		}
		// Nothing secret: the user's key, the guest's pinned host key.
		for _, secret := range []string{"AAAAtestkey", "ssh-ed25519", "BEGIN OPENSSH", "id_ed25519", "known_hosts"} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s renders %q", path, secret)
			}
		}
	}
	for path, want := range map[string]int{"/vms/nope": 404, "/vms/dev/confirm?action=format": 400, "/vms/dev/sessions/nope": 404} {
		if code, _, _ := u.do(t, "GET", path, nil, nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	waitFor(t, "the session to end", func() bool {
		ss, _ := cl.Sessions(ctx)
		return len(ss) == 1 && ss[0].State == agentproto.SessionExited
	})
	evs := u.readSSE(t, u.url+"/vms/dev/sessions/hello/log?stream=stderr", "end")
	if len(evs) < 2 || evs[0].name != "tail" || evs[0].data != `"oops\n"` {
		t.Errorf("stderr log stream = %+v, want a tail with oops then end", evs)
	}
}

type sseEvent struct{ name, data string }

// readSSE reads events from url until one named until arrives.
func (u *ui) readSSE(t *testing.T, url, until string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var evs []sseEvent
	u.streamSSE(t, ctx, url, func(e sseEvent) bool {
		evs = append(evs, e)
		return e.name != until
	})
	return evs
}

// streamSSE calls fn for each event of url while it returns true.
func (u *ui) streamSSE(t *testing.T, ctx context.Context, url string, fn func(sseEvent) bool) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := u.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("%s: content type %q", url, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			e.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			e.data = strings.TrimPrefix(line, "data: ")
		case line == "" && e.name != "":
			if !fn(e) {
				return
			}
			e = sseEvent{}
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: %v", url, ctx.Err())
	}
}

func TestLiveStreamFollowsState(t *testing.T) {
	u := newUI(t)
	u.w.CreateVM(t, "dev")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	asked, sawStopped, sawEvent := false, false, false
	u.streamSSE(t, ctx, u.url+"/live?after=0", func(e sseEvent) bool {
		switch e.name {
		case "vms":
			var vms []vmView
			json.Unmarshal([]byte(e.data), &vms)
			if len(vms) == 1 && vms[0].State == api.VMRunning && !asked {
				asked = true
				go u.w.D.StopVM(context.Background(), "dev")
			}
			sawStopped = sawStopped || len(vms) == 1 && vms[0].State == api.VMStopped
		case "event":
			var ev api.LogEntry
			json.Unmarshal([]byte(e.data), &ev)
			sawEvent = sawEvent || ev.Message == "vm dev stopped"
		}
		return !sawStopped || !sawEvent
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
