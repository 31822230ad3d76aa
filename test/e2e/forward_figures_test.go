//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestForwardFigures measures one TCP stream out of a guest through a
// 'vm forward' against the same transfer through 'ssh -L' into the same
// guest, in the same run. Run it with BANGER_E2E_FIGURES=1.
func TestForwardFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure forwarding throughput")
	}
	const size = 64 << 20
	e := newEnv(t, "")
	e.startDaemon()
	e.registerDebian("deb")
	e.ok("vm", "create", "--name", "bench", "--image", "deb", "--cpus", "1") // one CPU: no SMP bring-up under emulation
	ip := e.vm("bench").IP
	// A source that sends the same random blob to every connection on the
	// guest's loopback port 9000.
	e.ssh("bench", "head", "-c", fmt.Sprint(size), "/dev/urandom", ">", "/root/blob")
	e.ok("vm", "session", "start", "bench", "--name", "src", "--cwd", "/root", "--",
		"sh", "-c", "while :; do nc -N -l 127.0.0.1 9000 < /root/blob; done")

	e.ok("vm", "forward", "bench", "19000:9000", "--detach")
	sshL := e.inNS("ssh", append(append([]string{"-N", "-L", "127.0.0.1:29000:127.0.0.1:9000"}, benchSSHArgs(e, "bench")...), "root@"+ip)...)
	var sshErr strings.Builder
	sshL.Stderr = &sshErr
	if err := sshL.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sshL.Process.Kill(); sshL.Wait() }()
	waitUntil(t, "ssh -L to listen", 60*time.Second, func() bool { return dialableInNS(e, "127.0.0.1:29000") })

	var tFwd, tSSH []time.Duration
	for round := range 3 {
		tFwd = append(tFwd, pull(t, e, "127.0.0.1:19000", size))
		tSSH = append(tSSH, pull(t, e, "127.0.0.1:29000", size))
		t.Logf("round %d: vm forward %s (%.1f MB/s), ssh -L %s (%.1f MB/s)", round,
			tFwd[round].Round(time.Millisecond), mbps(size, tFwd[round]), tSSH[round].Round(time.Millisecond), mbps(size, tSSH[round]))
	}
	f, s := minDuration(tFwd), minDuration(tSSH)
	t.Logf("one %d MiB stream out of the guest: vm forward best %.1f MB/s, ssh -L best %.1f MB/s; ratio forward/ssh = %.2fx",
		size>>20, mbps(size, f), mbps(size, s), s.Seconds()/f.Seconds())
}

func mbps(n int, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// pull reads one whole blob from addr in the namespace and times it; a
// connection that ends short (the guest's nc restarting between
// connections) is retried.
func pull(t *testing.T, e *env, addr string, size int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n int64
		var took time.Duration
		err := e.ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			t0 := time.Now()
			n, err = io.Copy(io.Discard, c)
			took = time.Since(t0)
			return err
		})
		if err == nil && n == int64(size) {
			return took
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %d bytes from %s: got %d, %v", size, addr, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
