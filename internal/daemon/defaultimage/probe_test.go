package defaultimage

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbeRegistry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			t.Errorf("probe asked for %s", r.URL.Path)
		}
		w.WriteHeader(http.StatusUnauthorized) // an answer all the same
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := probeRegistry(context.Background(), host+"/library/debian:bookworm"); err != nil {
		t.Errorf("probing a registry that answers 401: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	if err := probeRegistry(context.Background(), closed+"/debian:bookworm"); err == nil {
		t.Error("probing a closed port succeeded")
	}
}
