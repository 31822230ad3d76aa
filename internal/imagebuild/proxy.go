package imagebuild

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// proxyVars are the settings a build step inherits from the daemon: the
// proxies (curl reads the lower-case ones and HTTPS_PROXY, npm and apt
// both) and BANGER_NPM_REGISTRY, a registry mirror for the devbox tools
// (an internal one, or plain HTTP through a proxy where TLS is
// intercepted: the pinned SHA-512 decides either way).
var proxyVars = []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "BANGER_NPM_REGISTRY"}

// ProxyEnv is the daemon's proxy settings (and npm registry mirror) for a
// builder VM, so a guest with no route of its own reaches the registries
// the way the host does. A proxy or mirror on the host's loopback is not reachable from the guest under
// that address: it is given as gateway (the bridge address, where the
// guest reaches the host) instead, so a proxy listening there (or on all
// addresses) serves the guest too.
func ProxyEnv(getenv func(string) string, gateway netip.Addr) []string {
	var env []string
	for _, k := range proxyVars {
		v := getenv(k)
		if v == "" {
			continue
		}
		if !strings.HasPrefix(strings.ToLower(k), "no_") {
			v = guestProxy(v, gateway)
		}
		env = append(env, k+"="+v)
	}
	return env
}

func guestProxy(v string, gateway netip.Addr) string {
	raw := v
	if !strings.Contains(v, "://") {
		raw = "http://" + v // curl and npm take host:port alone
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !gateway.IsValid() {
		return v
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return v
	}
	if port := u.Port(); port != "" {
		u.Host = net.JoinHostPort(gateway.String(), port)
	} else {
		u.Host = gateway.String()
	}
	return u.String()
}
