//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// TestReseedSeparatesForks restores one saved busybox guest twice, one
// after the other, with QEMU itself (the daemon's fork is built
// elsewhere): both forks start from the same kernel random pool. Each is reseeded with its
// own entropy, then each reads /proc/sys/kernel/random/uuid; the streams
// must differ. The uuids read before the reseed are logged. On this host
// they already differ: the Debian kernel mixes RDRAND (which TCG's -cpu
// max takes from the host) and the virtio-rng device into its reseeds, and
// its CRNG reseeds on first use once its seed is a minute old, so the test
// shows reseed working on restored forks rather than a collision it
// prevents. Kernels and CPUs without those sources keep sharing a stream
// until the reseed.
func TestReseedSeparatesForks(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "parent", "--image", "bb")
	v := e.vm("parent")
	e.killDaemon()
	defer e.startDaemon() // so cleanup can delete the VM

	args, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", v.PID))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimRight(string(args), "\x00"), "\x00")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	q := dialQMP(t, filepath.Join(v.RuntimeDir, "qmp.sock"))
	q.do(t, "stop", nil)
	q.do(t, "migrate", map[string]any{"uri": "exec:cat > " + state})
	for {
		var st struct {
			Status string `json:"status"`
		}
		q.doInto(t, "query-migrate", nil, &st)
		if st.Status == "completed" {
			break
		}
		if st.Status == "failed" || ctx.Err() != nil {
			t.Fatalf("saving the parent: migration %s", st.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fi, _ := os.Stat(state)
	t.Logf("parent saved: %d bytes", fi.Size())
	q.do(t, "quit", nil)
	q.close()

	var uuids [2][]string
	for i := range 2 {
		rt := filepath.Join(dir, fmt.Sprint("fork", i))
		os.MkdirAll(rt, 0o700)
		c, stop := startFork(ctx, t, e.ns.Name, argv, v.RuntimeDir, rt, state)
		run := func(script string) string {
			var out bytes.Buffer
			st, err := c.Run(ctx, agentproto.ExecRequest{Argv: []string{"/bin/sh", "-c", script}}, agentproto.Stdio{Stdout: &out})
			if err != nil || !st.Success() {
				t.Fatalf("fork %d: %s: %v %v", i, script, st, err)
			}
			return strings.TrimSpace(out.String())
		}
		before := run("cat /proc/sys/kernel/random/uuid")
		if _, err := c.Reseed(ctx, nil); err != nil {
			t.Fatalf("fork %d: %v", i, err)
		}
		uuids[i] = strings.Fields(run("for i in 1 2 3; do cat /proc/sys/kernel/random/uuid; done"))
		t.Logf("fork %d: uuid before reseed %s, after %v", i, before, uuids[i])
		c.Close()
		stop() // the next fork takes the parent's TAP
	}
	for _, u := range uuids[0] {
		if strings.Contains(strings.Join(uuids[1], " "), u) {
			t.Errorf("both forks drew uuid %s after their reseeds", u)
		}
	}
}

// startFork starts QEMU with the parent's command line restoring state:
// its runtime files under rt, its disks copy-on-write (snapshot=on), on
// the parent's TAP (a virtio-net device's saved state needs a TAP backend),
// paused until restored, then resumed. It returns a client of the fork's
// agent and a function that kills the fork.
func startFork(ctx context.Context, t *testing.T, ns string, argv []string, parentRT, rt, state string) (c *agentproto.Client, stop func()) {
	t.Helper()
	var a []string
	for i := 1; i < len(argv); i++ {
		arg := strings.ReplaceAll(argv[i], parentRT, rt)
		switch {
		case arg == "-daemonize":
			continue // the test keeps the process and its stderr
		case argv[i-1] == "-drive":
			arg += ",snapshot=on"
		}
		a = append(a, arg)
	}
	a = append(a, "-incoming", "exec:cat "+state)
	stderr, err := os.Create(filepath.Join(rt, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	// In the test's namespace, where the parent's TAP is.
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess(ipBin, append([]string{"ip", "netns", "exec", ns, argv[0]}, a...), &os.ProcAttr{Files: []*os.File{nil, stderr, stderr}})
	if err != nil {
		t.Fatal(err)
	}
	stop = func() {
		p.Kill()
		p.Wait()
		if b, _ := os.ReadFile(stderr.Name()); len(b) > 0 {
			t.Logf("fork qemu stderr:\n%s", b)
		}
	}
	t.Cleanup(stop)
	q := dialQMP(t, filepath.Join(rt, "qmp.sock"))
	defer q.close()
	for {
		var st struct {
			Status string `json:"status"`
		}
		q.doInto(t, "query-status", nil, &st)
		if st.Status != "inmigrate" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("restoring a fork: still in migration")
		}
		time.Sleep(100 * time.Millisecond)
	}
	q.do(t, "cont", nil)
	c, err = agentproto.Connect(ctx, agentproto.UnixDialer(filepath.Join(rt, "agent.sock")))
	if err != nil {
		t.Fatal(err)
	}
	return c, stop
}

// qmp is a minimal QMP client: one command at a time, events skipped.
type qmp struct {
	c  net.Conn
	br *bufio.Reader
}

func dialQMP(t *testing.T, path string) *qmp {
	t.Helper()
	var c net.Conn
	var err error
	for range 100 {
		if c, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	q := &qmp{c: c, br: bufio.NewReader(c)}
	q.br.ReadString('\n') // greeting
	q.do(t, "qmp_capabilities", nil)
	return q
}

func (q *qmp) close() { q.c.Close() }

func (q *qmp) do(t *testing.T, cmd string, args any) { q.doInto(t, cmd, args, nil) }

func (q *qmp) doInto(t *testing.T, cmd string, args, result any) {
	t.Helper()
	q.c.SetDeadline(time.Now().Add(time.Minute))
	b, _ := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	if args == nil {
		b, _ = json.Marshal(map[string]any{"execute": cmd})
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		t.Fatalf("qmp %s: %v", cmd, err)
	}
	for {
		line, err := q.br.ReadBytes('\n')
		if err != nil {
			if cmd == "quit" {
				return
			}
			t.Fatalf("qmp %s: %v", cmd, err)
		}
		var rep struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		json.Unmarshal(line, &rep)
		if rep.Error != nil {
			t.Fatalf("qmp %s: %s", cmd, rep.Error.Desc)
		}
		if rep.Return != nil {
			if result != nil {
				json.Unmarshal(rep.Return, result)
			}
			return
		}
	}
}
