package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/cli"
	"banger/internal/paths"
	"banger/internal/server"
)

// These tests drive the UI in a real headless Chromium (Debian's
// chromium package; $BANGER_CHROMIUM overrides the binary) against an
// in-process daemon with the fake VMM driver.

// browser starts a fresh headless Chromium for t. Names under evil.test
// resolve to 127.0.0.1, as a DNS rebinding attack would make them.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("BANGER_CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if bin != "" {
			break
		}
		bin, _ = exec.LookPath(name)
	}
	if bin == "" && os.Getenv("BANGER_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found and BANGER_REQUIRE_BROWSER is set: apt-get install chromium, or set BANGER_CHROMIUM")
	}
	if bin == "" {
		t.Skip("no Chromium found (apt-get install chromium, or set BANGER_CHROMIUM): the browser tests need a real browser")
	}
	proxy := strayProxy(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		// Users behind a corporate proxy have http_proxy set, and Chromium
		// follows it for every name but localhost: the pages these tests
		// load are all local, so the browser never uses a proxy. The
		// environment it gets names one anyway (strayProxy) so a test
		// proves that.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Env("http_proxy="+proxy, "https_proxy="+proxy, "HTTP_PROXY="+proxy, "HTTPS_PROXY="+proxy, "all_proxy="+proxy, "no_proxy=", "NO_PROXY="),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now, without a timeout
		t.Fatalf("starting %s: %v", bin, err)
	}
	return ctx
}

// strayProxy listens where the browser's environment says a proxy is and
// fails t for every connection made to it.
func strayProxy(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			t.Errorf("Chromium connected to the proxy its environment names (%s); the browser tests must not use the environment's proxy", l.Addr())
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "http://" + l.Addr().String()
}

// run runs browser actions, bounded so a stuck page fails the test.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitText polls until the element's text is want; the page updates it live.
func waitText(t *testing.T, ctx context.Context, selector, want string) {
	t.Helper()
	expr := fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, selector)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := eval[string](t, ctx, expr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s shows %q, want %q", selector, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// console collects what pages log, to catch script errors and CSP
// violations.
type console struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(ctx context.Context) *console {
	c := &console{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy") {
				c.mu.Lock()
				c.msgs = append(c.msgs, m.String())
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *console) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		t.Errorf("browser console: %s", m)
	}
}

// artifactDir is where screenshots go: $BANGER_ARTIFACTS, else
// build/artifacts at the top of the repository.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("BANGER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "build", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserDashboard: the page lists VMs (one made before it loaded,
// one after), follows a state change made with the banger CLI without a
// reload, and its stop button (with confirmation) stops a VM.
func TestBrowserDashboard(t *testing.T) {
	serveAPI := cliAgainstAPI(t)
	u := newUI(t)
	banger := serveAPI(u)
	ctx := browser(t)
	con := watchConsole(ctx)
	u.w.CreateVM(t, "alpha")

	run(t, ctx, "opening the dashboard", chromedp.Navigate(TokenURL(u.url, u.secret)), chromedp.WaitVisible(chromedp.CSS(`tr[data-vm="alpha"]`)))
	if at := eval[string](t, ctx, `location.href`); at != u.url+"/" {
		t.Errorf("after logging in the browser is at %s, want %s/ (no token in the address bar)", at, u.url)
	}
	waitText(t, ctx, `#conn`, "live")
	waitText(t, ctx, `tr[data-vm="alpha"] [data-field="state"]`, string(api.VMRunning))
	u.w.CreateVM(t, "beta")
	run(t, ctx, "waiting for the new vm's row", chromedp.WaitVisible(chromedp.CSS(`tr[data-vm="beta"] a[data-action="stop"]`)))
	waitText(t, ctx, `tr[data-vm="beta"] [data-field="state"]`, string(api.VMRunning))
	// Let the sparklines get a few samples before the screenshot.
	deadline := time.Now().Add(30 * time.Second)
	for eval[int](t, ctx, `(document.querySelector('tr[data-vm="alpha"] polyline').getAttribute('points') || '').split(' ').length`) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the cpu sparkline never got three samples")
		}
		time.Sleep(100 * time.Millisecond)
	}
	screenshot(t, ctx, "web-ui-dashboard.png")

	banger("vm", "stop", "alpha") // through the CLI and the daemon's API
	waitText(t, ctx, `tr[data-vm="alpha"] [data-field="state"]`, string(api.VMStopped))
	if hidden := eval[bool](t, ctx, `document.querySelector('tr[data-vm="alpha"] a[data-action="stop"]').hidden`); !hidden {
		t.Error("the stopped vm still offers Stop")
	}
	if hidden := eval[bool](t, ctx, `document.querySelector('tr[data-vm="alpha"] a[data-action="start"]').hidden`); hidden {
		t.Error("the stopped vm does not offer Start")
	}
	waitText(t, ctx, `#events li:first-child .msg`, "vm alpha stopped")

	run(t, ctx, "clicking stop",
		chromedp.Click(chromedp.CSS(`tr[data-vm="beta"] a[data-action="stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)))
	if vm, _ := u.w.D.VM(context.Background(), "beta"); vm.State != api.VMRunning {
		t.Fatalf("beta is %s before the stop was confirmed", vm.State)
	}
	run(t, ctx, "confirming the stop", chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`[data-vm-page="beta"]`)))
	waitText(t, ctx, `[data-vm-page="beta"] [data-field="state"]`, string(api.VMStopped))
	u.w.WaitState(t, "beta", api.VMStopped)
	screenshot(t, ctx, "web-ui-vm.png")
	con.check(t)
}

// TestBrowserRefusesCrossOriginAndRebinding: a form on another origin
// posting to the UI, and a page reached through a foreign host name that
// resolves to loopback, get nothing done.
func TestBrowserRefusesCrossOriginAndRebinding(t *testing.T) {
	u := newUI(t)
	ctx := browser(t)
	u.w.CreateVM(t, "dev")
	run(t, ctx, "opening the UI once (cookies set)", chromedp.Navigate(TokenURL(u.url, u.secret)), chromedp.WaitVisible(chromedp.CSS(`tr[data-vm="dev"]`)))

	// Another local site (same host, another port: cross-origin, same-site)
	// auto-submits a stop form to the UI.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/vms/dev/stop"><input name="csrf" value="guess"></form>
<script>document.getElementById('f').submit()</script>`, u.url)
	}))
	defer evil.Close()
	run(t, ctx, "visiting the hostile page", chromedp.Navigate(evil.URL))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(eval[string](t, ctx, `document.body ? document.body.innerText : ""`), "cross-origin request refused") {
		if time.Now().After(deadline) {
			t.Fatalf("the cross-origin post was not refused; page: %q at %s", eval[string](t, ctx, `document.body.innerText`), eval[string](t, ctx, `location.href`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if vm, _ := u.w.D.VM(context.Background(), "dev"); vm.State != api.VMRunning {
		t.Errorf("the cross-origin post changed the vm: %s", vm.State)
	}

	// DNS rebinding: evil.test resolves to 127.0.0.1.
	_, port, _ := strings.Cut(strings.TrimPrefix(u.url, "http://"), ":")
	run(t, ctx, "opening the UI under a foreign name", chromedp.Navigate("http://evil.test:"+port+"/"))
	body := eval[string](t, ctx, `document.body.innerText`)
	if !strings.Contains(body, "is not this banger web UI") || eval[bool](t, ctx, `!!document.querySelector('#vms')`) {
		t.Errorf("the UI answered a foreign Host: %q", body)
	}
}

// TestBrowserSessionLogTail: a session's page shows what it wrote before
// the page opened and follows what it writes after, until it ends.
func TestBrowserSessionLogTail(t *testing.T) {
	u := newUI(t)
	ctx := browser(t)
	con := watchConsole(ctx)
	u.w.CreateVM(t, "dev")
	cl, err := u.w.D.Agent(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	// It writes a line, then waits for a file the test creates once the
	// page is open, then writes more and ends.
	gate := filepath.Join(t.TempDir(), "go")
	script := fmt.Sprintf(`echo before; while [ ! -e %s ]; do sleep 0.05; done; echo after; echo '<b>not markup</b>'`, gate)
	if _, err := cl.StartSession(context.Background(), agentproto.SessionStart{Name: "tail", Argv: []string{"sh", "-c", script}}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "opening the session page", chromedp.Navigate(u.url+"/vms/dev/sessions/tail?token="+u.secret), chromedp.WaitVisible(chromedp.CSS(`pre[data-log]`)))
	waitText(t, ctx, `pre[data-log$="stdout"]`, "before\n")
	os.WriteFile(gate, nil, 0o644)
	waitText(t, ctx, `pre[data-log$="stdout"]`, "before\nafter\n<b>not markup</b>\n")
	waitText(t, ctx, `figure:first-child [data-log-status]`, "session ended")
	if n := eval[int](t, ctx, `document.querySelectorAll('pre b').length`); n != 0 {
		t.Error("session output was parsed as markup")
	}
	con.check(t)
}

// cliAgainstAPI points the banger CLI of this process at a socket of its
// own: call it before newUI (the daemon's layout comes from the
// environment it sets), then hand it the UI to serve that daemon's API on
// the socket. The result runs one CLI command and fails the test if it
// fails.
func cliAgainstAPI(t *testing.T) func(*ui) func(args ...string) string {
	rt, err := os.MkdirTemp("", "bgweb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("BANGER_NO_AUTOSTART", "1")
	return func(u *ui) func(args ...string) string {
		layout, err := paths.FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		sock, err := server.Listen(layout)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.New(u.w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
		t.Cleanup(func() { cancel(); <-done; sock.Close() })
		return func(args ...string) string {
			t.Helper()
			var out, errb bytes.Buffer
			root := cli.NewRoot(&out, &errb)
			root.SetArgs(args)
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("banger %s: %v\n%s", strings.Join(args, " "), err, errb.String())
			}
			return out.String()
		}
	}
}
