//go:build e2e

package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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
}

func startAptProxy(t *testing.T, e *env) *aptProxy {
	t.Helper()
	mirror, err := url.Parse(debootstrap.AptMirror())
	if err != nil {
		t.Fatal(err)
	}
	p := &aptProxy{hosts: []string{mirror.Host, "deb.debian.org"}}
	var l net.Listener
	if err := e.ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + l.Addr().String()
	// The transport dials from the host's network (the handler's
	// goroutines run on threads outside the namespace).
	tr := &http.Transport{Proxy: nil, ResponseHeaderTimeout: time.Minute}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return p
}
