package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/testutil/hostileguest"
)

// The fake VMM's agent runs in this process, so a "guest port" is a port
// on this host's loopback; forwards bind other loopback ports to it.

// digestService answers the sha256 of everything it read until EOF.
func digestService(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				h := sha256.New()
				if _, err := io.Copy(h, c); err == nil {
					c.Write(h.Sum(nil))
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// roundTrip sends data through addr and checks the digest that comes back.
func roundTrip(addr string, data []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		return fmt.Errorf("digest %x, want %x", got, want)
	}
	return nil
}

// portFree reports whether 127.0.0.1:port can be bound again.
func portFree(port int) bool {
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func detach(t *testing.T, w *world, vm string, specs ...api.PortSpec) api.Forward {
	t.Helper()
	fs, err := w.D.Forward(context.Background(), vm, api.ForwardRequest{Ports: specs, AnyPort: true, Detach: true}, nil)
	if err != nil {
		t.Fatalf("forwarding: %v", err)
	}
	return fs[0]
}

func TestForwardDetachedServesIsListedAndStops(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	guest := digestService(t)
	ctx := context.Background()

	// The guest's own port is taken on this host (by the service itself):
	// without --any-port that is an error naming the fix.
	_, err := w.D.Forward(ctx, "dev", api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: guest}}, Detach: true}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--any-port") {
		t.Fatalf("forward to a taken host port: %v, want a conflict suggesting --any-port", err)
	}

	f := detach(t, w, "dev", api.PortSpec{GuestPort: guest})
	if !strings.HasPrefix(f.HostAddr, "127.0.0.1:") || f.HostPort == guest {
		t.Fatalf("forward %+v: want a free port on 127.0.0.1", f)
	}
	if err := roundTrip(f.HostAddr, bytes.Repeat([]byte("data"), 1<<18)); err != nil {
		t.Fatal(err)
	}
	// A second forward to the same host port names the first.
	_, err = w.D.Forward(ctx, "dev", api.ForwardRequest{Ports: []api.PortSpec{{HostPort: f.HostPort, GuestPort: guest}}, Detach: true}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "already forwarded") {
		t.Errorf("second forward of host port %d: %v, want a conflict", f.HostPort, err)
	}

	vm, err := w.D.VM(ctx, "dev")
	if err != nil || len(vm.Forwards) != 1 || vm.Forwards[0].HostPort != f.HostPort || vm.Forwards[0].Served != 1 {
		t.Errorf("vm show forwards = %+v (%v), want the forward with one connection served", vm.Forwards, err)
	}
	ports, err := w.D.Ports(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	marked := false
	for _, p := range ports {
		marked = marked || p.Port == guest && len(p.Forwarded) == 1 && p.Forwarded[0] == f.HostPort
	}
	if !marked {
		t.Errorf("vm ports does not show port %d forwarded from %d: %+v", guest, f.HostPort, ports)
	}

	if _, err := w.D.StopForwards(ctx, "dev", []int{f.HostPort + 1}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stopping a port that is not forwarded: %v, want not found", err)
	}
	stopped, err := w.D.StopForwards(ctx, "dev", nil)
	if err != nil || len(stopped) != 1 {
		t.Fatalf("stop = %+v, %v", stopped, err)
	}
	if !portFree(f.HostPort) {
		t.Errorf("host port %d still bound after stop", f.HostPort)
	}
	if fs := w.D.Forwards("dev"); len(fs) != 0 {
		t.Errorf("forwards after stop = %+v", fs)
	}
}

func TestForwardEndsWithItsVM(t *testing.T) {
	for _, end := range []string{"stop", "delete"} {
		t.Run(end, func(t *testing.T) {
			w := newWorld(t)
			w.create("dev")
			f := detach(t, w, "dev", api.PortSpec{GuestPort: digestService(t)})
			var err error
			if end == "stop" {
				_, err = w.D.StopVM(context.Background(), "dev")
			} else {
				err = w.D.DeleteVM(context.Background(), "dev", false)
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the forward to end", func() bool { return len(w.D.Forwards("")) == 0 })
			if !portFree(f.HostPort) {
				t.Errorf("host port %d still bound after the vm's %s", f.HostPort, end)
			}
		})
	}
}

// A forward that is not detached lasts as long as its request.
func TestForwardInForegroundEndsWithItsRequest(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	guest := digestService(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan []api.Forward, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := w.D.Forward(ctx, "dev", api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: guest}}, AnyPort: true},
			func(fs []api.Forward) { started <- fs })
		errc <- err
	}()
	fs := <-started
	if err := roundTrip(fs[0].HostAddr, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("foreground forward ended with %v, want nil after its request ended", err)
	}
	if !portFree(fs[0].HostPort) || len(w.D.Forwards("dev")) != 0 {
		t.Errorf("forward still there after its request ended")
	}
}

func TestForwardFromTheForegroundEndsWhenTheVMStops(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	started := make(chan []api.Forward, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := w.D.Forward(context.Background(), "dev", api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: digestService(t)}}, AnyPort: true},
			func(fs []api.Forward) { started <- fs })
		errc <- err
	}()
	<-started
	if _, err := w.D.StopVM(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "dev") {
			t.Errorf("forward ended with %v, want an error saying vm dev went away", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("foreground forward still runs after its vm stopped")
	}
}

func TestForwardHundredParallelConnections(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	f := detach(t, w, "dev", api.PortSpec{GuestPort: digestService(t)})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			if err := roundTrip(f.HostAddr, bytes.Repeat([]byte{byte(i)}, 64<<10+i)); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "connections to close", func() bool { fs := w.D.Forwards("dev"); return fs[0].Active == 0 && fs[0].Served == 100 })
}

// A refused guest port closes the host connection and is recorded for
// vm show; the forward keeps serving.
func TestForwardToAPortNothingListensOn(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	// Two free ports; the guest's must differ from the host's, which
	// this in-process guest would reach.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	guest, host := ln.Addr().(*net.TCPAddr).Port, ln2.Addr().(*net.TCPAddr).Port
	ln.Close()
	ln2.Close()
	f := detach(t, w, "dev", api.PortSpec{HostPort: host, GuestPort: guest})
	c, err := net.Dial("tcp", f.HostAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("read from a forward to a closed port: %d, %v; want the connection closed", n, err)
	}
	c.Close()
	waitFor(t, "the error to be recorded", func() bool {
		return strings.Contains(w.D.Forwards("dev")[0].LastError, "nothing listens on tcp port "+strconv.Itoa(guest))
	})
}

// A guest that answers dial, sends part of a stream and closes it ends
// that one connection cleanly; the forward goes on serving.
func TestForwardHostileGuestClosingMidStream(t *testing.T) {
	w := newWorld(t)
	g := hostileguest.New()
	w.Driver.ServeAgent(g.Serve)
	w.create("dev")
	guest := digestService(t)
	f := detach(t, w, "dev", api.PortSpec{GuestPort: guest})
	g.Handle(agentproto.CallDial, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		if _, err := st.Write([]byte("{}\npartial")); err != nil {
			return err
		}
		return nil // the stream closes here, mid-answer
	})
	for i := range 3 {
		c, err := net.Dial("tcp", f.HostAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		c.Write(bytes.Repeat([]byte("x"), 64<<10)) // within one stream window: the guest never reads
		got, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d hangs after the guest closed its stream", i)
		}
		if string(got) != "partial" {
			t.Errorf("connection %d read %q, want what the guest sent before closing", i, got)
		}
		c.Close()
	}
	waitFor(t, "hostile connections to close", func() bool { return w.D.Forwards("dev")[0].Active == 0 })
	g.Handle(agentproto.CallDial, nil) // an honest agent again
	if err := roundTrip(f.HostAddr, []byte("still forwarding")); err != nil {
		t.Errorf("after hostile streams: %v", err)
	}
}

func TestForwardRequestBounds(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	ctx := context.Background()
	many := make([]api.PortSpec, 65)
	for i := range many {
		many[i] = api.PortSpec{GuestPort: 1000 + i}
	}
	for name, req := range map[string]api.ForwardRequest{
		"no port":          {},
		"guest port 0":     {Ports: []api.PortSpec{{GuestPort: 0}}},
		"guest port 70000": {Ports: []api.PortSpec{{GuestPort: 70000}}},
		"host port -1":     {Ports: []api.PortSpec{{HostPort: -1, GuestPort: 80}}},
		"same host port":   {Ports: []api.PortSpec{{HostPort: 18080, GuestPort: 80}, {HostPort: 18080, GuestPort: 81}}},
		"65 ports":         {Ports: many},
	} {
		req.Detach = true
		if _, err := w.D.Forward(ctx, "dev", req, nil); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := w.D.Forward(ctx, "nope", api.ForwardRequest{Ports: []api.PortSpec{{GuestPort: 80}}, Detach: true}, nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("forward to a missing vm: %v, want not found", err)
	}
	if fs := w.D.Forwards(""); len(fs) != 0 {
		t.Errorf("failed requests left forwards: %+v", fs)
	}
}

// Closing the daemon ends its forwards, open connections included, and
// waits for them: the port is free once Close returns.
func TestForwardEndsWhenTheDaemonCloses(t *testing.T) {
	w := newWorld(t)
	w.create("dev")
	f := detach(t, w, "dev", api.PortSpec{GuestPort: digestService(t)})
	c, err := net.Dial("tcp", f.HostAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("open, never finished"))
	waitFor(t, "the connection to be relayed", func() bool { return w.D.Forwards("dev")[0].Active == 1 })
	w.restart()
	if !portFree(f.HostPort) {
		t.Errorf("host port %d still bound after the daemon closed", f.HostPort)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the open connection outlived the daemon")
		}
	}
	if fs := w.D.Forwards(""); len(fs) != 0 {
		t.Errorf("a restarted daemon lists forwards %+v; they are not kept across restarts", fs)
	}
}
