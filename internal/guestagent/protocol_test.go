package guestagent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// rawSession is a host connection driven by hand, to send what the Client
// never would.
func (e *agentEnv) rawSession() *yamux.Session {
	e.t.Helper()
	host, guestSide := socketpair(e.t)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.srv.ServeConn(e.ctx, guestSide)
	}()
	synced, err := agentproto.HostSync(testCtx(e.t, 10*time.Second), host)
	if err != nil {
		e.t.Fatal(err)
	}
	sess, err := yamux.Client(synced, agentproto.MuxConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sess.Close() })
	return sess
}

// rawCall writes header bytes on a new stream and returns the reply.
func rawCall(t *testing.T, sess *yamux.Session, header []byte) (agentproto.Reply, net.Conn, *bufio.Reader) {
	t.Helper()
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write(header); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(st)
	var rep agentproto.Reply
	if err := agentproto.ReadLine(br, agentproto.MaxHeaderSize, &rep); err != nil {
		t.Fatalf("reading reply to %.40q: %v", header, err)
	}
	return rep, st, br
}

func headerLine(t *testing.T, call string, args any) []byte {
	raw, err := agentproto.EncodeArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(agentproto.Header{Call: call, Args: raw})
	return append(b, '\n')
}

func wantKind(t *testing.T, what string, rep agentproto.Reply, kind errdefs.Kind) {
	t.Helper()
	if rep.Error == nil || rep.Error.Kind != kind {
		t.Errorf("%s: reply %+v, want a %s error", what, rep, kind)
	} else {
		t.Logf("%s: %s", what, rep.Error.Message)
	}
}

func TestHelloIsRequiredAndVersionChecked(t *testing.T) {
	e := newEnv(t, guestConfig())
	sess := e.rawSession()
	rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallInfo, nil))
	wantKind(t, "info before hello", rep, errdefs.KindInvalid)

	rep, _, _ = rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: "2.0"}))
	wantKind(t, "hello with major 2", rep, errdefs.KindUnsupported)
	if rep.Error != nil && !strings.Contains(rep.Error.Message, "incompatible") {
		t.Errorf("version error %q does not say what is wrong", rep.Error.Message)
	}

	rep, _, _ = rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: "1.7"}))
	if rep.Error != nil {
		t.Fatalf("hello with a newer minor: %+v", rep.Error)
	}
	rep, _, _ = rawCall(t, sess, headerLine(t, agentproto.CallInfo, nil))
	if rep.Error != nil {
		t.Fatalf("info after hello: %+v", rep.Error)
	}
	rep, _, _ = rawCall(t, sess, headerLine(t, "frobnicate", nil))
	wantKind(t, "unknown call", rep, errdefs.KindUnsupported)
}

func TestCheckCompatible(t *testing.T) {
	for _, tt := range []struct {
		peer string
		ok   bool
	}{{"1.0", true}, {"1.9", true}, {"2.0", false}, {"0.1", false}, {"x", false}, {"", false}} {
		if err := agentproto.CheckCompatible(tt.peer); (err == nil) != tt.ok {
			t.Errorf("CheckCompatible(%q) = %v, want ok=%v", tt.peer, err, tt.ok)
		}
	}
}

// TestMalformedStreamsLeaveTheSessionAlive sends garbage on several streams
// while an exec runs on another; the exec finishes and later calls work.
func TestMalformedStreamsLeaveTheSessionAlive(t *testing.T) {
	e := newEnv(t, guestConfig())
	sess := e.rawSession()
	if rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: agentproto.ProtocolVersion})); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	// A well-behaved exec on its own stream, running throughout.
	rep, longSt, longBr := rawCall(t, sess, headerLine(t, agentproto.CallExec, agentproto.ExecRequest{Argv: []string{"sh", "-c", "sleep 0.5; echo survived"}}))
	if rep.Error != nil {
		t.Fatal(rep.Error)
	}

	rep, _, _ = rawCall(t, sess, []byte("this is not json\n"))
	wantKind(t, "garbage header", rep, errdefs.KindInvalid)
	rep, _, _ = rawCall(t, sess, []byte(`{"call":"exec","args":{"argv":"not-a-list"}}`+"\n"))
	wantKind(t, "ill-typed arguments", rep, errdefs.KindInvalid)
	rep, _, _ = rawCall(t, sess, append(bytes.Repeat([]byte("x"), agentproto.MaxHeaderSize+10), '\n'))
	wantKind(t, "oversized header", rep, errdefs.KindInvalid)

	// Garbage frames on an exec stream: the agent kills that process and
	// ends the stream.
	rep, st, br := rawCall(t, sess, headerLine(t, agentproto.CallExec, agentproto.ExecRequest{Argv: []string{"sleep", "1000"}}))
	if rep.Error != nil {
		t.Fatal(rep.Error)
	}
	var bad [5]byte
	bad[0] = 99
	binary.BigEndian.PutUint32(bad[1:], 0xffffffff)
	st.Write(bad[:])
	end := readEnd(t, br)
	if end.Exit == nil || end.Exit.Signal != "KILL" {
		t.Errorf("exec after a garbage frame ended with %+v, want killed", end)
	}

	// Oversized frame length with a valid type.
	rep, st, br = rawCall(t, sess, headerLine(t, agentproto.CallCopyIn, agentproto.CopyRequest{Path: t.TempDir()}))
	if rep.Error != nil {
		t.Fatal(rep.Error)
	}
	binary.BigEndian.PutUint32(bad[1:], agentproto.MaxFramePayload+1)
	bad[0] = byte(agentproto.FrameStdin)
	st.Write(bad[:])
	if end := readEnd(t, br); end.Error == nil {
		t.Errorf("copy_in with an oversized frame ended with %+v, want an error", end)
	}

	var out bytes.Buffer
	if end := readEndInto(t, longBr, &out); end.Exit == nil || end.Exit.Code != 0 || out.String() != "survived\n" {
		t.Errorf("concurrent exec: end %+v output %q", end, out.String())
	}
	longSt.Close()
	if rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallInfo, nil)); rep.Error != nil {
		t.Fatalf("info after the garbage: %+v", rep.Error)
	}
}

func readEnd(t *testing.T, br *bufio.Reader) agentproto.End {
	return readEndInto(t, br, io.Discard)
}

func readEndInto(t *testing.T, br *bufio.Reader, w io.Writer) agentproto.End {
	t.Helper()
	for {
		ft, payload, err := agentproto.ReadFrame(br, nil)
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch ft {
		case agentproto.FrameEnd:
			var end agentproto.End
			if err := json.Unmarshal(payload, &end); err != nil {
				t.Fatal(err)
			}
			return end
		case agentproto.FrameStdout:
			w.Write(payload)
		}
	}
}

// TestServePortReopensAfterHostLeaves drives ServePort, the virtio-serial
// loop, with a fake port: each open hands out a new socketpair end, and
// stale bytes sit in front of the second host's sync.
func TestServePortReopensAfterHostLeaves(t *testing.T) {
	e := newEnv(t, guestConfig())
	hosts := make(chan net.Conn)
	opened := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.srv.ServePort(ctx, func() (io.ReadWriteCloser, error) {
		h, g := socketpair(t)
		opened <- struct{}{}
		select {
		case hosts <- h:
		case <-ctx.Done():
		}
		return g, nil
	})

	for i, garbage := range []string{"", "\x00\x01stale yamux bytes\nBANGER-ACK 99\n"} {
		h := <-hosts
		if garbage != "" {
			h.Write([]byte(garbage))
		}
		c, err := agentproto.NewClient(testCtx(t, 10*time.Second), h)
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		if _, err := c.Info(testCtx(t, 5*time.Second)); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		c.Close()
	}
	if len(opened) < 2 {
		t.Errorf("port opened %d times, want a reopen per host", len(opened))
	}
}

func TestClientErrorsKeepKinds(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	_, err := c.Sessions(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = c.RemoveSession(testCtx(t, 5*time.Second), "nope")
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v, want not found", err)
	}
	if err := c.Shutdown(testCtx(t, 5*time.Second), false); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("shutdown without Power: err = %v, want unsupported", err)
	}
}
