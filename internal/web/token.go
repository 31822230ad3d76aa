package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// LoadToken returns the UI's secret kept in path, creating it (random,
// mode 0600) when it is missing. A file that is not ours, that other users
// can read, or that does not hold a well-formed token is no secret: it is
// replaced with a new one, which logs out every browser.
func LoadToken(path string) (string, error) {
	tok, err := readToken(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, errNoToken) {
		return "", err
	}
	tok = rand.Text()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".web-token-*")
	if err != nil {
		return "", fmt.Errorf("creating the web UI token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil { // CreateTemp made it 0600
		return "", fmt.Errorf("installing the web UI token %s: %w", path, err)
	}
	return tok, nil
}

var errNoToken = errors.New("no usable web UI token")

// readToken reads an existing private token, or says errNoToken.
func readToken(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
		return "", errNoToken
	}
	if err != nil {
		return "", fmt.Errorf("reading the web UI token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading the web UI token: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || st == nil || int(st.Uid) != os.Getuid() {
		return "", errNoToken
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf("reading the web UI token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || len(tok) > 256 || strings.TrimLeft(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", errNoToken
	}
	return tok, nil
}

// TokenURL is base (a Listener's URL) with the token that logs a browser in.
func TokenURL(base, token string) string {
	return base + "/?" + url.Values{"token": {token}}.Encode()
}

// auth is the UI's per-user secret and the cookie a browser gets for
// presenting it.
type auth struct {
	tokenSum [32]byte // sha256 of the token, so comparing leaks no length
	cookie   string   // the cookie's name: browsers send a host's cookies to all its ports
	session  string   // the cookie's value, derived from the token
}

func newAuth(token, port string) auth {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("banger web UI session"))
	return auth{
		tokenSum: sha256.Sum256([]byte(token)),
		cookie:   "banger_auth_" + port,
		session:  base64.RawURLEncoding.EncodeToString(m.Sum(nil)),
	}
}

func (a auth) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return hmac.Equal(sum[:], a.tokenSum[:])
}

func (a auth) cookieOK(r *http.Request) bool {
	c, err := r.Cookie(a.cookie)
	return err == nil && hmac.Equal([]byte(c.Value), []byte(a.session))
}

// public reports whether r may be answered without the secret: only the
// embedded script, style sheet and icon, which hold no data.
func public(r *http.Request) bool {
	p := r.URL.Path
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.HasPrefix(p, "/static/") && path.Clean(p) == strings.TrimSuffix(p, "/") // no /static/../vms
}

// authenticate lets r through when it carries the secret, as the session
// cookie or as ?token=. A GET with the token gets the cookie and is sent
// to the same URL without the token, so it does not linger in the address
// bar or the history. It reports whether the handler should go on.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if public(r) {
		return true
	}
	q := r.URL.Query()
	if !q.Has("token") {
		if s.auth.cookieOK(r) {
			return true
		}
		s.log.Warn("web ui refused a request without its token", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "this banger web UI needs its token: open the URL that 'banger web' prints", http.StatusUnauthorized)
		return false
	}
	if !s.auth.tokenOK(q.Get("token")) {
		s.log.Warn("web ui refused a wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "wrong token for this banger web UI: open the URL that 'banger web' prints", http.StatusUnauthorized)
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: s.auth.cookie, Value: s.auth.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	q.Del("token")
	// One leading slash: "//host" would send the browser elsewhere.
	to := url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/"), RawQuery: q.Encode()}
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
	return false
}
