package guestagent_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/api/errdefs"
)

// serveTCP runs handle for each connection to a listener on addr until
// the test ends; it returns the port.
func serveTCP(t *testing.T, addr string, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listening on %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// digestServer reads until EOF, then answers the sha256 of what it read:
// it works only when the host half closes and still reads.
func digestServer(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	c.Write(h.Sum(nil))
}

func TestDialRelaysBothWaysWithHalfClose(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	port := serveTCP(t, "127.0.0.1:0", digestServer)
	ctx := testCtx(t, 30*time.Second)
	c, err := cl.Dial(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("forward me\n"), 500_000) // 5.5 MB: several windows
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(got, want[:]) {
		t.Errorf("digest through the relay = %x, want %x", got, want)
	}
}

// A server that talks first (banners): its bytes may arrive together with
// the reply line and must not be lost.
func TestDialKeepsBytesSentWithTheReply(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	port := serveTCP(t, "127.0.0.1:0", func(c net.Conn) { c.Write([]byte("SSH-2.0-banner\r\n")) })
	c, err := cl.Dial(testCtx(t, 10*time.Second), port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "SSH-2.0-banner\r\n" {
		t.Errorf("read %q, %v; want the banner", got, err)
	}
}

func TestDialRefusedPortSaysNothingListens(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, err = cl.Dial(testCtx(t, 10*time.Second), port)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("dial of a closed port: %v, want an unavailable error", err)
	}
	if want := "nothing listens on tcp port " + strconv.Itoa(port); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// The connection survives the refusal.
	if _, err := cl.Info(testCtx(t, 10*time.Second)); err != nil {
		t.Errorf("info after a refused dial: %v", err)
	}
}

func TestDialOutOfRangePortsAreInvalid(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	for _, port := range []int{0, -1, 65536, 1 << 20} {
		if _, err := cl.Dial(testCtx(t, 10*time.Second), port); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("dial port %d: %v, want invalid", port, err)
		}
	}
}

// A service bound to one non-loopback address (eth0's, in a guest) is
// found through the listening sockets.
func TestDialFindsAServiceBoundToOneAddress(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	port := serveTCP(t, "127.0.0.2:0", func(c net.Conn) { c.Write([]byte("hello from .2")) })
	c, err := cl.Dial(testCtx(t, 10*time.Second), port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := io.ReadAll(c); string(got) != "hello from .2" {
		t.Errorf("read %q", got)
	}
}

// A guest service that resets its connection mid-transfer ends that
// stream with an error on the host, not a hang, and the next dial works.
func TestDialServiceResetMidStream(t *testing.T) {
	e := newEnv(t, guestConfig())
	cl := e.connect()
	port := serveTCP(t, "127.0.0.1:0", func(c net.Conn) {
		var b [1]byte
		io.ReadFull(c, b[:]) // the host is connected and reading
		c.Write(bytes.Repeat([]byte("x"), 100<<10))
		c.(*net.TCPConn).SetLinger(0) // close with RST
	})
	for i := range 2 {
		c, err := cl.Dial(testCtx(t, 10*time.Second), port)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Write([]byte("g"))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("dial %d: read hung after the service reset (%d bytes)", i, n)
		}
		if n > 100<<10 {
			t.Errorf("dial %d: read %d bytes, more than were sent", i, n)
		}
		c.Close()
	}
}
