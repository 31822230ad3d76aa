package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// csp allows only the UI's own script, styles and connections.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders are set on every response, errors included.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// hostRule decides which Host headers the UI answers.
type hostRule struct {
	port string
	// names are accepted host names besides loopback IPs and "localhost".
	names map[string]bool
	// anyIP accepts every IP literal: the UI listens on all addresses.
	anyIP bool
}

func newHostRule(configured string, port string) hostRule {
	r := hostRule{port: port, names: map[string]bool{"localhost": true}}
	ip, err := netip.ParseAddr(configured)
	switch {
	case configured == "" || (err == nil && ip.IsUnspecified()):
		r.anyIP = true
	case err == nil:
		r.names[ip.String()] = true
	default:
		r.names[strings.ToLower(configured)] = true
	}
	return r
}

// allows reports whether host (a Host header) names this UI. IP literals
// are safe whatever they are, since DNS rebinding needs a name; names must
// be the configured one or localhost.
func (r hostRule) allows(host string) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
	}
	if port != r.port {
		return false
	}
	name = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"))
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip.IsLoopback() || r.anyIP || r.names[ip.String()]
	}
	return r.names[name]
}

// guard applies the security headers, the host rule and the secret to
// every request, and the same-origin and CSRF checks to state-changing
// ones.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		if !s.hosts.allows(r.Host) {
			s.log.Warn("web ui refused a request for a foreign host (DNS rebinding?)", "host", r.Host, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("host %q is not this banger web UI; open %s", r.Host, s.url), http.StatusForbidden)
			return
		}
		if !s.authenticate(w, r) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.cop.Check(r); err != nil {
				s.log.Warn("web ui refused a cross-origin request", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
				http.Error(w, "cross-origin request refused: use the banger web UI itself", http.StatusForbidden)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !s.validToken(r, r.PostFormValue("csrf")) {
				http.Error(w, "missing or stale form token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

const csrfCookie = "banger_csrf"

// token returns the CSRF token for r's browser, setting its cookie first
// if it has none. The token is an HMAC of the cookie under a key that only
// this process knows, so neither half can be forged from the other.
func (s *Server) token(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 20 {
		c = &http.Cookie{Name: csrfCookie, Value: rand.Text(), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}
		http.SetCookie(w, c)
	}
	return s.sign(c.Value)
}

func (s *Server) sign(v string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) validToken(r *http.Request, tok string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || tok == "" {
		return false
	}
	return hmac.Equal([]byte(tok), []byte(s.sign(c.Value)))
}
