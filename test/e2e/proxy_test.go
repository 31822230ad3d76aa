//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	// tlsHosts are fetched from upstream over HTTPS though the client
	// asks in plain HTTP; their tarballs (paths with /-/, immutable) are
	// kept in cacheDir between runs. cached counts answers from there.
	tlsHosts []string
	cacheDir string
	cached   atomic.Int64
}

func startAptProxy(t *testing.T, e *env) *aptProxy {
	t.Helper()
	return startMirrorProxy(t, e, "127.0.0.1:0", nil, "")
}

// startMirrorProxy is the apt proxy listening on listen in the namespace
// that also forwards plain-HTTP requests for tlsHosts, fetching them over
// HTTPS from the host (so a guest needs no CA of the host's), and keeps
// their tarballs in cacheDir.
func startMirrorProxy(t *testing.T, e *env, listen string, tlsHosts []string, cacheDir string) *aptProxy {
	t.Helper()
	mirror, err := url.Parse(debootstrap.AptMirror())
	if err != nil {
		t.Fatal(err)
	}
	p := &aptProxy{hosts: append([]string{mirror.Host, "deb.debian.org"}, tlsHosts...), tlsHosts: tlsHosts, cacheDir: cacheDir}
	var l net.Listener
	if err := e.ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.URL = "http://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	// The transport dials from the host's network (the handler's
	// goroutines run on threads outside the namespace).
	tr := &http.Transport{Proxy: nil, ResponseHeaderTimeout: time.Minute}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.Scheme != "http" || !slices.Contains(p.hosts, r.URL.Host) {
			p.refused.Add(1)
			http.Error(w, "this proxy only forwards the Debian mirror", http.StatusForbidden)
			return
		}
		upstream := *r.URL
		if slices.Contains(p.tlsHosts, r.URL.Host) {
			upstream.Scheme = "https"
			if p.fromCache(w, r) {
				return
			}
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, upstream.String(), nil)
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
		p.copyAndCache(w, r, resp)
		p.served.Add(1)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return p
}

// cachePath is where a cacheable request's answer is kept; "" when it is
// not cacheable (not a GET of a tarball of a TLS host, or no cache).
func (p *aptProxy) cachePath(r *http.Request) string {
	if p.cacheDir == "" || r.Method != http.MethodGet || !slices.Contains(p.tlsHosts, r.URL.Host) || !strings.Contains(r.URL.Path, "/-/") {
		return ""
	}
	sum := sha256.Sum256([]byte(r.URL.Host + r.URL.Path))
	return filepath.Join(p.cacheDir, hex.EncodeToString(sum[:]))
}

func (p *aptProxy) fromCache(w http.ResponseWriter, r *http.Request) bool {
	path := p.cachePath(r)
	if path == "" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	p.cached.Add(1)
	http.ServeContent(w, r, "", time.Time{}, f)
	return true
}

// copyAndCache sends resp's body and keeps a complete 200 answer in the
// cache (written aside, then renamed).
func (p *aptProxy) copyAndCache(w io.Writer, r *http.Request, resp *http.Response) {
	path := p.cachePath(r)
	if path == "" || resp.StatusCode != http.StatusOK {
		io.Copy(w, resp.Body)
		return
	}
	os.MkdirAll(p.cacheDir, 0o755)
	tmp, err := os.CreateTemp(p.cacheDir, ".tmp-*")
	if err != nil {
		io.Copy(w, resp.Body)
		return
	}
	defer os.Remove(tmp.Name())
	_, cerr := io.Copy(io.MultiWriter(w, tmp), resp.Body)
	if err := tmp.Close(); cerr == nil && err == nil {
		os.Rename(tmp.Name(), path)
	}
}
