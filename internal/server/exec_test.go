package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/api/stdiomux"
)

// TestExecStatusStdioAndTTY runs commands through the exec route and the
// stdio_mux_v1 bridge on the fake driver's guest (this host).
func TestExecStatusStdioAndTTY(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	run := func(req api.ExecRequest, stdin []byte) (stdout, stderr []byte, code int, sig string) {
		t.Helper()
		conn, err := cl.Exec(ctx, "dev", req)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go conn.SendStdin(bytes.NewReader(stdin))
		var o, e bytes.Buffer
		end, err := conn.Output(&o, &e)
		if err != nil || end.Exit == nil {
			t.Fatalf("exec %v: end %+v, %v", req.Argv, end, err)
		}
		return o.Bytes(), e.Bytes(), end.Exit.Code, end.Exit.Signal
	}
	for _, tt := range []struct {
		script string
		code   int
		sig    string
	}{{"exit 0", 0, ""}, {"exit 3", 3, ""}, {"kill -TERM $$", -1, "TERM"}} {
		if _, _, code, sig := run(api.ExecRequest{Argv: []string{"sh", "-c", tt.script}}, nil); code != tt.code || sig != tt.sig {
			t.Errorf("%s: exit %d signal %q; want %d %q", tt.script, code, sig, tt.code, tt.sig)
		}
	}

	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	out, errOut, code, _ := run(api.ExecRequest{Argv: []string{"sh", "-c", "cat; echo err >&2"}}, payload)
	if code != 0 || !bytes.Equal(out, payload) || string(errOut) != "err\n" {
		t.Errorf("binary round trip: exit %d, %d bytes back (equal %v), stderr %q", code, len(out), bytes.Equal(out, payload), errOut)
	}

	out, _, code, _ = run(api.ExecRequest{Argv: []string{"sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo tty; stty size; echo "$TERM $CI"`},
		TTY: true, Rows: 33, Cols: 101, Term: "vt100", Env: []string{"CI=1"}}, nil)
	if code != 0 || !bytes.Contains(out, []byte("tty")) || !bytes.Contains(out, []byte("33 101")) || !bytes.Contains(out, []byte("vt100 1")) {
		t.Errorf("with a TTY: exit %d, output %q; want tty, 33 101 and vt100 1", code, out)
	}
	out, _, _, _ = run(api.ExecRequest{Argv: []string{"sh", "-c", `[ -t 0 ] || echo notty`}}, nil)
	if string(out) != "notty\n" {
		t.Errorf("without a TTY: %q", out)
	}
	// A window size change reaches the guest's terminal.
	conn, err := cl.Exec(ctx, "dev", api.ExecRequest{Argv: []string{"sh", "-c", "read l; stty size"}, TTY: true, Rows: 10, Cols: 10})
	if err != nil {
		t.Fatal(err)
	}
	conn.Resize(20, 70)
	time.Sleep(200 * time.Millisecond)
	conn.Write([]byte("go\n"))
	var o bytes.Buffer
	if end, err := conn.Output(&o, &o); err != nil || end.Exit == nil || !bytes.Contains(o.Bytes(), []byte("20 70")) {
		t.Errorf("after a resize to 20x70: %q, %+v, %v", o.String(), end, err)
	}
	conn.Close()

	// A signal goes to the whole process group, as Ctrl-C on a terminal.
	// A signal reaches the command's whole process group: the shell's
	// foreground child dies with it. (A shell's background jobs ignore
	// SIGINT, as on any non-interactive shell, so the child runs in the
	// foreground here.)
	conn, err = cl.Exec(ctx, "dev", api.ExecRequest{Argv: []string{"sh", "-c", "echo $$; sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	ends := make(chan stdiomux.End, 1)
	go func() { end, _ := conn.Output(pw, io.Discard); pw.Close(); ends <- end }()
	var shPID string
	fmt.Fscan(pr, &shPID)
	go io.Copy(io.Discard, pr)
	var pid string
	for deadline := time.Now().Add(30 * time.Second); pid == ""; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + shPID + "/task/" + shPID + "/children")
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid = f[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("the shell %s started no child", shPID)
		}
	}
	conn.Signal("INT")
	select {
	case end := <-ends:
		if end.Exit == nil || end.Exit.Signal != "INT" {
			t.Errorf("after SIGINT: %+v; want killed by INT", end)
		}
	case <-time.After(time.Minute):
		t.Fatal("the command did not end after a SIGINT to its group (the shell waits for its child)")
	}
	conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Fields(string(b))[2] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child %s outlived a SIGINT to its group", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if _, err := cl.Exec(ctx, "dev", api.ExecRequest{Argv: []string{"true"}, Env: []string{"NOEQUALS"}}); err == nil {
		t.Error("an --env without = was accepted")
	}
}
