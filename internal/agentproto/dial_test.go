package agentproto

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFirecracker serves a hybrid vsock socket: the first refuse
// connections are closed after CONNECT (no guest listener yet), later ones
// get "OK <n>\n" with the guest's first bytes in the same write.
func fakeFirecracker(t *testing.T, refuse int, port string, greeting []byte) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines := make(chan string, 16)
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			lines <- line
			if n < refuse || line != "CONNECT "+port+"\n" {
				c.Close()
				continue
			}
			c.Write(append([]byte("OK 1073741824\n"), greeting...))
			t.Cleanup(func() { c.Close() })
		}
	}()
	return path, lines
}

func TestDialHybridVsockKeepsBytesAfterOK(t *testing.T) {
	greeting := []byte("guest spoke first\x00\x01\x02")
	path, lines := fakeFirecracker(t, 3, "1024", greeting)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialHybridVsock(ctx, path, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(greeting))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, greeting) {
		t.Errorf("first bytes after OK = %q, want %q", got, greeting)
	}
	if n := len(lines); n != 4 {
		t.Errorf("dialer made %d attempts, want 3 refused + 1", n)
	}
}

func TestDialHybridVsockGivesUpWithContext(t *testing.T) {
	path, _ := fakeFirecracker(t, 1<<30, "1024", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := DialHybridVsock(ctx, path, 1024)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestDialUnixWaitsForTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.sock")
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln, err := net.Listen("unix", path)
		if err != nil {
			return
		}
		t.Cleanup(func() { ln.Close() })
		c, _ := ln.Accept()
		if c != nil {
			c.Write([]byte("hi"))
			t.Cleanup(func() { c.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialUnix(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 2)
	io.ReadFull(c, b)
	if string(b) != "hi" {
		t.Errorf("read %q", b)
	}
}

func TestHostSyncSkipsStaleBytesAndRetries(t *testing.T) {
	host, guest := sockPair(t)
	defer host.Close()
	defer guest.Close()
	go func() {
		br := bufio.NewReader(guest)
		// Stale output of an earlier session, then ignore the first SYNC as
		// if the agent were not up yet.
		guest.Write([]byte("\x00\x00yamux junk\nBANGER-ACK 7\n"))
		br.ReadString('\n')
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if n, ok := strings.CutPrefix(line, "BANGER-SYNC "); ok {
				guest.Write([]byte("BANGER-ACK " + n))
			}
			if strings.HasPrefix(line, "BANGER-START ") {
				guest.Write([]byte("payload"))
				io.Copy(io.Discard, guest)
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := HostSync(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "payload" {
		t.Errorf("after sync read %q, %v; want payload", b, err)
	}
}

func TestFramesRoundTripAndRejectGarbage(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	big := bytes.Repeat([]byte("z"), MaxFramePayload+10)
	fw.Write(FrameStdout, []byte("hi"))
	fw.Write(FrameStderr, big)
	fw.WriteJSON(FrameEnd, End{Exit: &ExitStatus{Code: 3}})
	var got []FrameType
	total := 0
	for {
		ft, p, err := ReadFrame(&buf, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ft)
		total += len(p)
	}
	if len(got) != 4 || got[0] != FrameStdout || got[1] != FrameStderr || got[2] != FrameStderr || got[3] != FrameEnd {
		t.Errorf("frame types = %v", got)
	}
	if want := 2 + len(big) + len(`{"exit":{"code":3}}`); total != want {
		t.Errorf("payload bytes = %d, want %d", total, want)
	}
	for _, bad := range [][]byte{{9, 0, 0, 0, 1, 'x'}, {1, 0xff, 0xff, 0xff, 0xff}, {1, 0, 0, 0, 5, 'a'}} {
		if _, _, err := ReadFrame(bytes.NewReader(bad), nil); err == nil {
			t.Errorf("ReadFrame(%v) accepted garbage", bad)
		}
	}
}

// sockPair is a buffered, connected pair like a real transport (net.Pipe
// is synchronous, which no transport is).
func sockPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "pair.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return a, <-accepted
}
