package server

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/api"
	"banger/api/stdiomux"
	"banger/internal/daemon"
	"banger/internal/daemon/daemontest"
	"banger/internal/testutil/testregistry"
)

func init() {
	// Bodies the validator has no decoder for by default: NDJSON is
	// validated line by line as JSON (see openAPICheck.response), tar as
	// bytes.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-tar", openapi3filter.FileBodyDecoder)
}

// openAPICheck sends real calls to a real server and validates each
// request and response against api/openapi.yaml.
type openAPICheck struct {
	t       *testing.T
	doc     *openapi3.T
	router  routers.Router
	hc      *http.Client
	covered map[string]bool // "METHOD /path/{template}"
}

// call is one request: route is the document's path template, filled
// from params.
type call struct {
	method, route string
	params        map[string]string
	query         url.Values
	body          any    // encoded as JSON
	raw           []byte // sent as is, with contentType
	contentType   string
	// ok: the call must succeed (a 2xx, and a stream must end with a
	// result); otherwise it must fail with an Error.
	ok bool
	// bad: the request breaks the document, and the server must refuse
	// it too (the document and the server agree on what is invalid).
	bad bool
	// lines > 0 reads only that many lines of a stream that lasts until
	// the client goes (forwards held open), then hangs up.
	lines int
}

// reply is what came back, after validation.
type answer struct {
	status  int
	body    []byte
	lines   [][]byte // NDJSON lines
	trailer http.Header
}

func newOpenAPICheck(t *testing.T, socket string) *openAPICheck {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("loading api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validating api/openapi.yaml: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &openAPICheck{t: t, doc: doc, router: router, hc: &http.Client{Transport: tr}, covered: map[string]bool{}}
}

func (c *openAPICheck) request(ctx context.Context, cl call, body []byte) *http.Request {
	path := cl.route
	for k, v := range cl.params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	u := "http://bangerd" + path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", cl.contentType)
	}
	return req
}

// do sends cl, validating the request before and the response after.
func (c *openAPICheck) do(cl call) answer {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := cl.raw
	if cl.body != nil {
		body, _ = json.Marshal(cl.body)
		cl.contentType = "application/json"
	}
	name := cl.method + " " + cl.route

	req := c.request(ctx, cl, body)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: the document has no route for %s %s: %v", name, req.Method, req.URL, err)
	}
	if route.Path != cl.route || route.Method != cl.method {
		t.Fatalf("%s: the document routes %s to %s %s", name, req.URL.Path, route.Method, route.Path)
	}
	c.covered[name] = true
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	switch err := openapi3filter.ValidateRequest(ctx, in); {
	case err != nil && !cl.bad:
		t.Errorf("%s: request does not match the document: %v", name, err)
	case err == nil && cl.bad:
		t.Errorf("%s: the document accepts a request the server must refuse", name)
	}

	resp, err := c.hc.Do(c.request(ctx, cl, body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	var data []byte
	if cl.lines > 0 {
		br := bufio.NewReader(resp.Body)
		for range cl.lines {
			l, err := br.ReadBytes('\n')
			if err != nil {
				t.Fatalf("%s: reading line %d of the stream: %v", name, len(data), err)
			}
			data = append(data, l...)
		}
	} else if data, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("%s: reading the answer: %v", name, err)
	}
	r := answer{status: resp.StatusCode, body: data, trailer: resp.Trailer}
	validate := func(b []byte) {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Options: in.Options}
		out.SetBodyBytes(b)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s: %d answer does not match the document: %v\nbody: %.600s", name, resp.StatusCode, err, b)
		}
	}
	failed := resp.StatusCode >= 300
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		r.lines = bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		for _, l := range r.lines {
			validate(l)
		}
		if cl.lines == 0 {
			failed = checkFrames(t, name, r.lines)
		}
	} else {
		validate(data)
	}
	if failed == cl.ok {
		t.Errorf("%s: status %d, body %.400s; want ok=%v", name, resp.StatusCode, data, cl.ok)
	}
	return r
}

// checkFrames holds a stream to its shape: a start event, events, then
// one result or error line last. It reports whether the stream failed.
func checkFrames(t *testing.T, name string, lines [][]byte) (failed bool) {
	t.Helper()
	frames := make([]map[string]json.RawMessage, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal(l, &frames[i]); err != nil || len(frames[i]) != 1 {
			t.Errorf("%s: line %d is not one of event, result, error: %s", name, i+1, l)
			return true
		}
	}
	if len(frames) < 2 || frames[0]["event"] == nil {
		t.Errorf("%s: a stream starts with an event and ends with a result or error; got %d lines", name, len(frames))
		return true
	}
	for i, f := range frames[:len(frames)-1] {
		if f["event"] == nil {
			t.Errorf("%s: line %d of %d is not an event; only the last line is a result or error", name, i+1, len(frames))
		}
	}
	last := frames[len(frames)-1]
	if last["event"] != nil {
		t.Errorf("%s: the stream ended without a result or error", name)
	}
	return last["error"] != nil
}

func p(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestOpenAPIDescribesEveryRoute sends a real call to every route of a
// real server (a daemon with the fake VMM) and validates each request and
// response against api/openapi.yaml. The server's route table, the
// document's operations and the calls made here must be the same set: a
// route added to the server without the document fails, and so does a
// route documented but not exercised.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	w := daemontest.New(t, func(o *daemon.Options) {
		o.Config.KernelCatalogURL = "" // no network
		o.WebURL, o.WebLoginURL = "http://127.0.0.1:1/", "http://127.0.0.1:1/login?token=secret"
	})
	sock, err := Listen(w.Layout)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(w.D, slog.New(slog.DiscardHandler), func() {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	c := newOpenAPICheck(t, w.Layout.SocketPath)

	vm, sess := p("name", "dev"), p("name", "dev", "session", "s1")
	c.do(call{method: "GET", route: "/v1/openapi.yaml", ok: true})
	c.do(call{method: "GET", route: "/v1/daemon", ok: true})
	c.do(call{method: "GET", route: "/v1/daemon/web-login", ok: true})
	c.do(call{method: "GET", route: "/v1/events", query: url.Values{"after": {"0"}, "limit": {"5"}}, ok: true})

	// Images.
	c.do(call{method: "GET", route: "/v1/images", ok: true})
	def := c.do(call{method: "GET", route: "/v1/images/{name}", params: p("name", "default"), ok: true})
	var im api.Image
	json.Unmarshal(def.body, &im)
	c.do(call{method: "POST", route: "/v1/images", body: api.RegisterImageRequest{Name: "copy", Rootfs: im.Rootfs, Kernel: im.Kernel}, ok: true})
	c.do(call{method: "POST", route: "/v1/images", body: map[string]any{"name": "x", "bogus": 1}, bad: true})
	c.do(call{method: "POST", route: "/v1/images/{name}/promote", params: p("name", "copy"), ok: true})
	c.do(call{method: "DELETE", route: "/v1/images/{name}", params: p("name", "copy"), query: url.Values{"force": {"true"}}, ok: true})
	reg := testregistry.New(t, nil)
	ref := pushImage(t, reg)
	c.do(call{method: "POST", route: "/v1/images/pull", body: api.PullImageRequest{Ref: ref, Name: "pulled", Kernel: im.Kernel, Size: 32 << 20}, ok: true})
	c.do(call{method: "POST", route: "/v1/images/pull", body: api.PullImageRequest{Ref: "Not A Ref::"}})
	c.do(call{method: "POST", route: "/v1/images/build", body: api.BuildImageRequest{Name: "b", From: "nope"}})
	c.do(call{method: "POST", route: "/v1/images/prune", ok: true})

	// Kernels.
	c.do(call{method: "GET", route: "/v1/kernels", ok: true})
	c.do(call{method: "GET", route: "/v1/kernels/catalog", ok: true})
	// Kernels through a registry: publish host files, list the tags, pull
	// them back as a kernel.
	krepo := reg.Host + "/kernels/test"
	c.do(call{method: "POST", route: "/v1/kernels/{name}/publish", params: p("name", "k1"),
		body: api.KernelPublishRequest{Ref: krepo + ":v1", Insecure: true, Kernel: im.Kernel, Version: "6.1.0"}, ok: true})
	c.do(call{method: "GET", route: "/v1/kernels/tags", query: url.Values{"repo": {krepo}, "insecure": {"true"}}, ok: true})
	c.do(call{method: "POST", route: "/v1/kernels/pull", body: api.KernelPullRequest{Ref: krepo + ":v1", Name: "k1", Insecure: true}, ok: true})
	c.do(call{method: "GET", route: "/v1/kernels/{name}", params: p("name", "k1"), ok: true})
	c.do(call{method: "DELETE", route: "/v1/kernels/{name}", params: p("name", "k1"), ok: true})
	c.do(call{method: "GET", route: "/v1/kernels/{name}", params: p("name", "nope")})
	c.do(call{method: "POST", route: "/v1/kernels/{name}/pull", params: p("name", "nope")})
	c.do(call{method: "DELETE", route: "/v1/kernels/{name}", params: p("name", "nope")})
	c.do(call{method: "POST", route: "/v1/kernels/pull", body: api.KernelPullRequest{Ref: "Not A Ref::"}})
	c.do(call{method: "POST", route: "/v1/kernels/{name}/publish", params: p("name", "nope"), body: api.KernelPublishRequest{Ref: "127.0.0.1:1/k:v"}})
	c.do(call{method: "GET", route: "/v1/kernels/tags", query: url.Values{"repo": {"Not A Repo::"}}})

	// VMs.
	c.do(call{method: "POST", route: "/v1/vms", body: api.CreateVMRequest{Name: "dev", DiskBytes: 64 << 20}, ok: true})
	c.do(call{method: "GET", route: "/v1/vms", ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}", params: vm, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}", params: p("name", "nope")})
	keep := true
	c.do(call{method: "PATCH", route: "/v1/vms/{name}", params: vm, body: api.UpdateVMRequest{KeepAlive: &keep}, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/auth-sync", params: vm, body: api.AuthSyncRequest{Tools: []string{"opencode"}}, ok: true})
	none := []string{}
	c.do(call{method: "PUT", route: "/v1/vms/{name}/auth-sync", params: vm, body: api.SetAuthSyncRequest{Tools: &none}, ok: true})
	c.do(call{method: "PUT", route: "/v1/vms/{name}/auth-sync", params: vm, body: api.SetAuthSyncRequest{}})
	c.do(call{method: "GET", route: "/v1/vms/{name}/stats", params: vm, query: url.Values{"history": {"all"}}, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/ports", params: vm, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/logs", params: vm, ok: true})

	// Forwards: a free guest port is enough to listen on the host.
	fw := c.do(call{method: "POST", route: "/v1/vms/{name}/forwards", params: vm,
		body: api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: 9}}, AnyPort: true, Detach: true}, ok: true})
	var fs []api.Forward
	json.Unmarshal(fw.body, &fs)
	if len(fs) != 1 {
		t.Fatalf("forwards: %s", fw.body)
	}
	held := c.do(call{method: "POST", route: "/v1/vms/{name}/forwards", params: vm,
		body: api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: 9}}, AnyPort: true}, ok: true, lines: 2})
	if !bytes.Contains(held.lines[1], []byte(`"step":"forward"`)) {
		t.Errorf("a held forward's stream: %s", held.body)
	}
	c.do(call{method: "GET", route: "/v1/vms/{name}/forwards", params: vm, ok: true})
	c.do(call{method: "DELETE", route: "/v1/vms/{name}/forwards", params: vm, query: url.Values{"port": {fmt.Sprint(fs[0].HostPort)}}, ok: true})

	// Files: a tar in, its stat, and the same tree out.
	dir := t.TempDir()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi\n"))
	tw.Close()
	c.do(call{method: "PUT", route: "/v1/vms/{name}/files", params: vm, query: url.Values{"path": {dir}},
		raw: tb.Bytes(), contentType: "application/x-tar", ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/files/stat", params: vm, query: url.Values{"path": {filepath.Join(dir, "hello.txt")}}, ok: true})
	out := c.do(call{method: "GET", route: "/v1/vms/{name}/files", params: vm, query: url.Values{"path": {dir}}, ok: true})
	if out.trailer.Get(api.TrailerCopyError) != "" || out.trailer.Get(api.TrailerCopyEntries) != "2" {
		t.Errorf("copy out trailers: %v", out.trailer)
	}

	// Workspaces: a host checkout into the guest (this host, so a
	// temporary directory) and its work back as a branch; then from a
	// path that is no checkout.
	repo, guest := gitRepo(t), filepath.Join(t.TempDir(), "repo")
	c.do(call{method: "POST", route: "/v1/vms/{name}/workspace", params: vm, body: api.WorkspacePrepareRequest{Path: repo, GuestPath: guest}, ok: true})
	os.WriteFile(filepath.Join(guest, "new.txt"), []byte("work\n"), 0o644)
	c.do(call{method: "POST", route: "/v1/vms/{name}/workspace/export", params: vm,
		body: api.WorkspaceExportRequest{RepoPath: repo, GuestPath: guest, Branch: "from-guest"}, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/workspace", params: vm, body: api.WorkspacePrepareRequest{Path: dir}})
	c.do(call{method: "POST", route: "/v1/vms/{name}/workspace/export", params: vm, body: api.WorkspaceExportRequest{RepoPath: dir}})

	// Exec: the answer names a stdio_mux_v1 socket; run the command through it.
	ex := c.do(call{method: "POST", route: "/v1/vms/{name}/exec", params: vm, body: api.ExecRequest{Argv: []string{"echo", "hi"}}, ok: true})
	if got := bridgeOutput(t, ex.body); got != "hi\n" {
		t.Errorf("exec through the bridge printed %q", got)
	}

	// Sessions.
	c.do(call{method: "POST", route: "/v1/vms/{name}/sessions", params: vm,
		body: api.StartSessionRequest{Name: "s1", Argv: []string{"sh", "-c", "echo out; exec sleep 60"}, StdinMode: api.SessionPipe}, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/sessions", params: vm, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/sessions/{session}", params: sess, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/sessions/{session}/logs", params: sess, query: url.Values{"stream": {"stdout"}}, ok: true})
	c.do(call{method: "GET", route: "/v1/vms/{name}/sessions/{session}/logs", params: sess, query: url.Values{"stream": {"stdin"}}, bad: true})
	at := c.do(call{method: "POST", route: "/v1/vms/{name}/sessions/{session}/attach", params: sess, body: api.AttachRequest{}, ok: true})
	detach(t, at.body)
	c.do(call{method: "POST", route: "/v1/vms/{name}/sessions/{session}/kill", params: sess, body: api.KillSessionRequest{Signal: "CONT"}, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/sessions/{session}/stop", params: sess, body: api.StopSessionRequest{Timeout: time.Second}, ok: true})
	c.do(call{method: "DELETE", route: "/v1/vms/{name}/sessions/{session}", params: sess, ok: true})

	// Lifecycle and snapshots.
	c.do(call{method: "POST", route: "/v1/vms/{name}/pause", params: vm, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/resume", params: vm, ok: true})
	// This world has no network, so the fork stream ends in its error line
	// (a fork needs an address of its own); the stream is checked all the same.
	c.do(call{method: "POST", route: "/v1/vms/{name}/fork", params: vm, body: api.ForkVMRequest{Name: "twin"}})
	c.do(call{method: "POST", route: "/v1/vms/{name}/template", params: vm, body: api.SnapshotImageRequest{Name: "dev-t"}, ok: true})
	c.do(call{method: "GET", route: "/v1/templates", ok: true})
	c.do(call{method: "GET", route: "/v1/templates/{name}", params: p("name", "dev-t"), ok: true})
	c.do(call{method: "DELETE", route: "/v1/templates/{name}", params: p("name", "dev-t"), ok: true})
	c.do(call{method: "GET", route: "/v1/templates/{name}", params: p("name", "nope")})
	c.do(call{method: "POST", route: "/v1/vms/{name}/suspend", params: vm, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/start", params: vm, query: url.Values{"cold": {"true"}}, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/restart", params: vm, ok: true})
	c.do(call{method: "POST", route: "/v1/vms/{name}/stop", params: vm, ok: true})
	c.do(call{method: "DELETE", route: "/v1/vms/{name}", params: vm, ok: true})
	c.do(call{method: "POST", route: "/v1/daemon/shutdown", ok: true})

	// The three lists must agree.
	served := srv.Routes()
	var documented []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("the server answers %s but api/openapi.yaml does not describe it; add it to the document (paths, and components/schemas for new types)", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("api/openapi.yaml describes %s but the server has no such route", r)
		}
		if !c.covered[r] {
			t.Errorf("%s is documented but this test sends it no call; add one", r)
		}
	}
}

// bridgeOutput runs an exec bridge to its end and returns its stdout.
func bridgeOutput(t *testing.T, body []byte) string {
	t.Helper()
	var b api.Bridge
	if err := json.Unmarshal(body, &b); err != nil || b.Protocol != api.StdioMuxV1 {
		t.Fatalf("bridge answer %s: %v", body, err)
	}
	conn, err := stdiomux.Dial(context.Background(), b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.CloseStdin()
	var out bytes.Buffer
	if _, err := conn.Output(&out, os.Stderr); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// detach connects to an attach bridge and detaches.
func detach(t *testing.T, body []byte) {
	t.Helper()
	var b api.Bridge
	if err := json.Unmarshal(body, &b); err != nil || b.Session == nil {
		t.Fatalf("attach answer %s: %v", body, err)
	}
	conn, err := stdiomux.Dial(context.Background(), b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Detach()
	if end, err := conn.Output(io.Discard, io.Discard); err != nil || !end.Detached {
		t.Errorf("detaching: end %+v, %v", end, err)
	}
}

// pushImage pushes a one-layer image to reg and returns its reference.
func pushImage(t *testing.T, reg *testregistry.Registry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("box\n"))
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return reg.Push(t, "box:latest", img)
}

// gitRepo makes a host git repository with one commit.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "README"), []byte("hello\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}
