//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/client"
)

// stats reads 'vm stats NAME --json'.
func (e *env) stats(name string) api.VMStats {
	e.t.Helper()
	var st api.VMStats
	if err := json.Unmarshal([]byte(e.ok("vm", "stats", name, "--json")), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitStats polls the VM's stats until cond holds.
func (e *env) waitStats(name, what string, cond func(api.VMStats) bool) api.VMStats {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := e.stats(name)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("vm %s: timed out waiting for %s; last stats %+v", name, what, st)
		}
		time.Sleep(time.Second)
	}
}

// TestObservabilityAndAutoStop boots a real guest with a short
// auto_stop_stale_after: its stats (guest, VMM process, QMP metrics) show
// up in 'vm stats', 'vm show' and the web UI; an SSH connection is
// counted; an attached session keeps it running past the threshold; once
// detached it is stopped for idling, and says so in the event log.
func TestObservabilityAndAutoStop(t *testing.T) {
	const stale, interval = 20 * time.Second, 2 * time.Second
	e := newEnv(t, "auto_stop_stale_after = \"20s\"\nstats_poll_interval = \"2s\"\nmetrics_poll_interval = \"2s\"\n")
	e.startDaemon()
	e.registerDebian("deb")
	e.ok("vm", "create", "--name", "obs", "--image", "deb", "--memory", "512", "--disk-size", "1G", "--keep-alive")

	st := e.waitStats("obs", "guest stats and qmp metrics", func(st api.VMStats) bool {
		c := st.Current
		return c != nil && c.GuestError == "" && c.MemTotal > 0 && c.VMMRSS > 0 && c.CPUs > 0 &&
			st.Metrics != nil && len(st.Metrics.Block) > 0
	})
	if m := st.Metrics; m.Error != "" || m.Block[0].Device != "rootfs" || m.Block[0].ReadBytes == 0 {
		t.Errorf("qmp metrics = %+v; want rootfs reads", m)
	}
	if len(st.Current.Disks) == 0 {
		t.Errorf("no guest disks in %+v", st.Current)
	}
	if out := e.ok("vm", "show", "obs"); !strings.Contains(out, "usage:") || !regexp.MustCompile(`keep alive:\s+yes`).MatchString(out) {
		t.Errorf("vm show lacks the usage line or keep-alive:\n%s", out)
	}
	if out := e.ok("vm", "stats", "obs"); !strings.Contains(out, "vmm process:") || !strings.Contains(out, "kept alive") {
		t.Errorf("vm stats:\n%s", out)
	}

	// The web UI, on the namespace's loopback: refused without the token
	// 'banger web' prints; with it, the VM is listed; a foreign Host is
	// refused.
	webURL, err := url.Parse(strings.TrimSpace(e.ok("web")))
	if err != nil || webURL.Host != "127.0.0.1:7777" {
		t.Fatalf("banger web: %v, %v", webURL, err)
	}
	if code, body := getInNS(t, e, "127.0.0.1:7777", "127.0.0.1:7777", "/"); code != 401 || strings.Contains(body, "obs") {
		t.Errorf("web UI without the token: %d\n%s", code, truncateStr(body, 2000))
	}
	code, hdr, _ := requestInNS(t, e, "127.0.0.1:7777", "127.0.0.1:7777", webURL.RequestURI(), nil)
	cookies := (&http.Response{Header: hdr}).Cookies()
	if code != 303 || len(cookies) == 0 {
		t.Fatalf("web UI login: %d, cookies %v", code, cookies)
	}
	loggedIn := http.Header{"Cookie": {cookies[0].Name + "=" + cookies[0].Value}}
	if code, _, body := requestInNS(t, e, "127.0.0.1:7777", "127.0.0.1:7777", "/", loggedIn); code != 200 || !strings.Contains(body, `data-vm="obs"`) {
		t.Errorf("web UI: %d\n%s", code, truncateStr(body, 2000))
	}
	if code, _ := getInNS(t, e, "127.0.0.1:7777", "evil.test:7777", "/"); code != 403 {
		t.Errorf("web UI answered a foreign Host with %d, want 403", code)
	}

	// An SSH connection is counted.
	ssh := e.start("vm", "ssh", "obs", "--", "sleep", "600")
	e.waitStats("obs", "the ssh connection", func(st api.VMStats) bool {
		return st.Current != nil && st.Current.SSHConnections > 0 && strings.Contains(st.Busy, "ssh connection")
	})
	ssh.cmd.Process.Kill()
	<-ssh.done

	// An attached session holds the VM up past the threshold.
	e.ok("vm", "session", "start", "obs", "--name", "hold", "--", "sleep", "600")
	att := e.start("vm", "session", "attach", "obs", "hold", "--no-stdin")
	e.waitStats("obs", "the attached session", func(st api.VMStats) bool { return strings.Contains(st.Busy, `session "hold" attached`) })
	e.ok("vm", "set", "obs", "--keep-alive=false")
	held := time.Now()
	for time.Since(held) < stale+3*interval {
		if st := e.stats("obs"); st.State != api.VMRunning || !strings.Contains(st.Busy, "attached") {
			t.Fatalf("with a session attached: %+v", st)
		}
		time.Sleep(interval)
	}

	// Detached, with a detached session still running, it is idle: stopped.
	att.cmd.Process.Kill()
	<-att.done
	deadline := time.Now().Add(5 * time.Minute)
	for e.vm("obs").State != api.VMStopped {
		if time.Now().After(deadline) {
			t.Fatalf("vm not auto-stopped; stats %+v\nlog:\n%s", e.stats("obs"), e.daemonLog())
		}
		time.Sleep(interval)
	}
	cl := client.New(filepath.Join(e.rt, "banger", "bangerd.sock"))
	evs, err := cl.Events(context.Background(), "vm/obs", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || strings.Contains(ev.Message, "auto_stop_stale_after")
	}
	if !found {
		t.Errorf("no auto-stop event for vm obs: %+v", evs)
	}
}
