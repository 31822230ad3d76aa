package imagebuild

import (
	"net/netip"
	"slices"
	"testing"
)

func TestProxyEnv(t *testing.T) {
	gw := netip.MustParseAddr("172.16.0.1")
	host := map[string]string{
		"http_proxy":          "http://127.0.0.1:3128",
		"https_proxy":         "http://user:pw@localhost:3128/",
		"HTTPS_PROXY":         "http://proxy.corp.example:8080",
		"no_proxy":            "localhost,127.0.0.1",
		"FTP_PROXY":           "http://127.0.0.1:21",
		"BANGER_NPM_REGISTRY": "http://localhost:4873",
	}
	got := ProxyEnv(func(k string) string { return host[k] }, gw)
	want := []string{
		"http_proxy=http://172.16.0.1:3128",
		"https_proxy=http://user:pw@172.16.0.1:3128/",
		"no_proxy=localhost,127.0.0.1",
		"HTTPS_PROXY=http://proxy.corp.example:8080",
		"BANGER_NPM_REGISTRY=http://172.16.0.1:4873",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ProxyEnv = %q\nwant %q", got, want)
	}
	if got := ProxyEnv(func(string) string { return "" }, gw); len(got) != 0 {
		t.Errorf("no proxy on the host: %q", got)
	}
}

// A proxy written as host:port alone, as curl and npm accept it, is
// rewritten for the guest too.
func TestGuestProxyWithoutScheme(t *testing.T) {
	gw := netip.MustParseAddr("172.16.0.1")
	for in, want := range map[string]string{
		"127.0.0.1:3128":        "http://172.16.0.1:3128",
		"localhost:3128":        "http://172.16.0.1:3128",
		"proxy.corp.example:80": "proxy.corp.example:80",
	} {
		if got := guestProxy(in, gw); got != want {
			t.Errorf("guestProxy(%q) = %q, want %q", in, got, want)
		}
	}
}
