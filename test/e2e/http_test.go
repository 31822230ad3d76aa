//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// getInNS GETs http://addr/path with the given Host header from inside the
// test's namespace, retrying until the server answers (opencode takes a
// while to start under software emulation).
func getInNS(t *testing.T, e *env, addr, host, path string) (int, string) {
	t.Helper()
	status, _, body := requestInNS(t, e, addr, host, path, nil)
	return status, body
}

// requestInNS is getInNS with extra request headers, answering the
// response's headers too.
func requestInNS(t *testing.T, e *env, addr, host, path string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var status int
		var body string
		var rh http.Header
		err := e.ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", path, host)
			hdr.Write(c)
			io.WriteString(c, "\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			status, rh, body = resp.StatusCode, resp.Header, string(b)
			return err
		})
		if err == nil {
			return status, rh, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s%s (Host %s): %v", addr, path, host, err)
		}
		time.Sleep(time.Second)
	}
}

// truncateStr cuts s to n bytes for messages.
func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
