//go:build e2e

package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"banger/internal/debootstrap"
)

// aptProxy is an HTTP forward proxy on the namespace's loopback that
// forwards plain-HTTP requests for the host's Debian mirror, from the
// host's network, and refuses everything else (CONNECT included). It is
// the "mirror or proxy" a host without internet access has: the daemon in
// the namespace reaches the mirror through it and nothing else.
type aptProxy struct {
	URL     string
	hosts   []string
	served  atomic.Int64
	refused atomic.Int64
	// tunnelTo are the host:port a CONNECT may reach (none for the apt
	// proxy); tunnels counts those opened.
	tunnelTo []string
	tunnels  atomic.Int64
	mu       sync.Mutex
	open     []net.Conn // tunnel ends, closed when the test ends
}

func startAptProxy(t *testing.T, e *env) *aptProxy {
	t.Helper()
	return startMirrorProxy(t, e, "127.0.0.1:0", nil)
}

// startMirrorProxy is the apt proxy listening on listen in the namespace
// that also opens CONNECT tunnels to tunnelTo (host:port).
func startMirrorProxy(t *testing.T, e *env, listen string, tunnelTo []string) *aptProxy {
	t.Helper()
	mirror, err := url.Parse(debootstrap.AptMirror())
	if err != nil {
		t.Fatal(err)
	}
	p := &aptProxy{hosts: []string{mirror.Host, "deb.debian.org"}, tunnelTo: tunnelTo}
	var l net.Listener
	if err := e.ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.URL = "http://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	var tunnels sync.WaitGroup
	// The transport dials from the host's network (the handler's
	// goroutines run on threads outside the namespace).
	tr := &http.Transport{Proxy: nil, ResponseHeaderTimeout: time.Minute}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect && slices.Contains(p.tunnelTo, r.Host) {
			p.tunnel(w, r, &tunnels)
			return
		}
		if r.Method == http.MethodConnect || r.URL.Scheme != "http" || !slices.Contains(p.hosts, r.URL.Host) {
			p.refused.Add(1)
			http.Error(w, "this proxy only forwards the Debian mirror", http.StatusForbidden)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, h := range []string{"Range", "If-Modified-Since", "If-Range", "User-Agent", "Accept"} {
			if v := r.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		p.served.Add(1)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections(); p.closeTunnels(); tunnels.Wait() })
	return p
}

// tunnel splices the client's connection to r.Host, from the host's
// network, until either side closes (or the test's proxy goes).
func (p *aptProxy) tunnel(w http.ResponseWriter, r *http.Request, wg *sync.WaitGroup) {
	up, err := net.DialTimeout("tcp", r.Host, 30*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.tunnels.Add(1)
	p.mu.Lock()
	p.open = append(p.open, up, down)
	p.mu.Unlock()
	down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(up, buf); up.(*net.TCPConn).CloseWrite() }()
	go func() { defer wg.Done(); io.Copy(down, up); down.Close(); up.Close() }()
}

func (p *aptProxy) closeTunnels() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
}
