package guestagent_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// TestClientOverHybridVsock puts a stand-in for Firecracker's vsock socket
// between host and agent: it answers CONNECT with OK, then relays bytes to
// an in-process agent, which the host reaches with the real dialer.
func TestClientOverHybridVsock(t *testing.T) {
	e := newEnv(t, guestConfig())
	uds := filepath.Join(t.TempDir(), "v.sock")
	ln, err := net.Listen("unix", uds)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			hc, err := ln.Accept()
			if err != nil {
				return
			}
			go relayToAgent(t, e, hc)
		}
	}()
	c, err := agentproto.Connect(testCtx(t, 10*time.Second), agentproto.HybridVsockDialer(uds, agentproto.DefaultVsockPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Info(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if _, err := c.Run(testCtx(t, 5*time.Second), agentproto.ExecRequest{Argv: []string{"echo", "via vsock"}}, agentproto.Stdio{Stdout: &out}); err != nil || out.String() != "via vsock\n" {
		t.Fatalf("exec over hybrid vsock: %q, %v", out.String(), err)
	}
}

func relayToAgent(t *testing.T, e *agentEnv, hc net.Conn) {
	defer hc.Close()
	line, err := bufio.NewReader(io.LimitReader(hc, 32)).ReadString('\n')
	if err != nil || line != "CONNECT 1024\n" {
		return
	}
	host, guestSide := socketpair(t)
	defer host.Close()
	go e.srv.ServeConn(e.ctx, guestSide)
	hc.Write([]byte("OK 1073741824\n"))
	go io.Copy(host, hc)
	io.Copy(hc, host)
}

func TestFindSerialPort(t *testing.T) {
	sys := t.TempDir()
	for port, name := range map[string]string{"vport0p0": "org.qemu.guest_agent.0", "vport0p1": agentproto.SerialPortName} {
		dir := filepath.Join(sys, "class", "virtio-ports", port)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "name"), []byte(name+"\n"), 0o644)
	}
	got, err := guestagent.FindSerialPort(sys, "/dev", agentproto.SerialPortName)
	if err != nil || got != "/dev/vport0p1" {
		t.Errorf("FindSerialPort = %q, %v; want /dev/vport0p1", got, err)
	}
	if _, err := guestagent.FindSerialPort(sys, "/dev", "org.other"); err == nil {
		t.Error("found a port that does not exist")
	}
}
