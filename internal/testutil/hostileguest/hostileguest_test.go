package hostileguest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
	"banger/internal/testutil/hostileguest"
)

// The calls a Guest does not answer reach the real agent unchanged,
// streaming ones included, so a VM behind it boots and works.
func TestRelayIsFaithful(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	real, err := guestagent.New(guestagent.Config{
		Paths: guestagent.Paths{
			StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "etc"),
			Home: home, SSHDir: filepath.Join(dir, "ssh"),
		},
		InitMode: agentproto.InitModeDev,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	g := hostileguest.New()
	host, guestEnd := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, real, guestEnd) }()
	cl, err := agentproto.NewClient(ctx, host)
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	st, err := cl.Run(ctx, agentproto.ExecRequest{Argv: []string{"cat"}}, agentproto.Stdio{Stdin: strings.NewReader("through the relay\n"), Stdout: &out})
	if err != nil || !st.Success() || out.String() != "through the relay\n" {
		t.Errorf("exec with stdin: %v, %v, %q", st, err, out.String())
	}

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "f.txt", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello"))
	tw.Close()
	dst := filepath.Join(dir, "copied")
	if res, err := cl.CopyIn(ctx, dst, &tb); err != nil || res.Entries != 1 {
		t.Errorf("copy_in: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "hello" {
		t.Errorf("copied file holds %q", b)
	}

	g.Handle(agentproto.CallPorts, hostileguest.Reply([]agentproto.Port{{Proto: "tcp", Port: 1, Process: hostileguest.Escapes}}))
	if ps, err := cl.Ports(ctx); err != nil || len(ps) != 1 || ps[0].Process != hostileguest.Escapes {
		t.Errorf("handled ports: %+v, %v", ps, err)
	}
	if g.Calls(agentproto.CallPorts) != 1 || g.Calls(agentproto.CallExec) != 0 {
		t.Errorf("handled %d ports and %d exec calls; want 1 and 0", g.Calls(agentproto.CallPorts), g.Calls(agentproto.CallExec))
	}
	cl.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
