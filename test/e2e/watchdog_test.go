//go:build e2e

package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// The watchdog cleans up what a test run leaves when its cleanups cannot
// run: when go test's -timeout fires, the testing package panics and the
// binary exits without running a single t.Cleanup, and a developer's
// Ctrl-C ends it the same way. Left behind would be bangerd (started in a
// session of its own), its QEMUs (daemonized, reparented to init), and
// the network namespaces with banger's bridge, TAPs and nftables table.
//
// Every env registers with the watchdog when made and unregisters at the
// end of its cleanup. Shortly before the test timeout, or on SIGINT or
// SIGTERM, the watchdog kills every process of every env still
// registered (each process inside its namespace, and any process naming
// its runtime or state directory on its command line: QEMU names both),
// removes its namespaces (the TAPs and the bridge live in them and go
// with them) and its directories, and says what it did on stderr.
type watchdog struct {
	mu    sync.Mutex
	envs  map[*env]*watched
	fired string // why it fired; set once
}

// watched is what the watchdog cleans for one env.
type watched struct {
	test string
	ns   string   // the env's namespace; <ns>-* are namespaces its test made beside it
	dirs []string // runtime, home and other directories of the env
}

var watch = &watchdog{envs: map[*env]*watched{}}

// add registers e; after the watchdog has fired the test is failed
// instead, as what it would make could not be cleaned.
func (w *watchdog) add(e *env) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != "" {
		e.t.Fatalf("e2e watchdog: not starting an environment: %s", w.fired)
	}
	w.envs[e] = &watched{test: e.t.Name(), ns: e.ns.Name, dirs: []string{e.rt, e.home}}
}

// addDir has the watchdog remove dir, and kill what names it, with e.
func (w *watchdog) addDir(e *env, dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if it := w.envs[e]; it != nil {
		it.dirs = append(it.dirs, dir)
	}
}

func (w *watchdog) remove(e *env) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.envs, e)
}

// fire cleans every registered env, once; later calls clean what was
// registered since (nothing, as add refuses after the first).
func (w *watchdog) fire(why string) {
	w.mu.Lock()
	if w.fired == "" {
		w.fired = why
	}
	items := make([]*watched, 0, len(w.envs))
	for e, it := range w.envs {
		items = append(items, it)
		delete(w.envs, e)
	}
	w.mu.Unlock()
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "e2e watchdog: %s: cleaning up %d environment(s)\n", why, len(items))
	for _, it := range items {
		for _, line := range it.clean() {
			fmt.Fprintf(os.Stderr, "e2e watchdog: %s: %s\n", it.test, line)
		}
	}
}

// timeoutMargin is how long before the test timeout the watchdog fires:
// 5% of the timeout, so a long run loses little of its time, but at least
// 5s, which killing the processes, waiting for them to go and removing
// the namespaces take on a loaded host, and at most a minute.
func timeoutMargin(timeout time.Duration) time.Duration {
	return min(max(timeout/20, 5*time.Second), time.Minute)
}

// testTimeout is the -test.timeout the binary runs with (0: none).
func testTimeout() time.Duration {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return 0
	}
	d, _ := f.Value.(flag.Getter).Get().(time.Duration)
	return d
}

// start arms the watchdog: a timer that fires timeoutMargin before the
// test timeout (counted from now, just before m.Run starts testing's own
// alarm, so it fires early rather than late) and a handler for SIGINT
// and SIGTERM, which fires and then dies of the signal. stop disarms it
// and waits for its goroutine.
func (w *watchdog) start() (stop func()) {
	var fireAt <-chan time.Time
	timeout := testTimeout()
	timer := time.NewTimer(max(timeout-timeoutMargin(timeout), 0))
	if timeout > 0 {
		fireAt = timer.C
	} else {
		timer.Stop()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-fireAt:
				fireAt = nil
				w.fire(fmt.Sprintf("the test timeout (%s) is %s away", timeout, timeoutMargin(timeout)))
			case sig := <-sigs:
				w.fire("got " + sig.String())
				signal.Reset(sig)
				syscall.Kill(os.Getpid(), sig.(syscall.Signal))
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		timer.Stop()
		signal.Stop(sigs)
		close(done)
		<-exited
	}
}

// clean kills the env's processes, removes its namespaces and
// directories, and returns what it did.
func (it *watched) clean() []string {
	var report []string
	nsNames := it.namespaces()
	inodes := map[uint64]bool{}
	for _, name := range nsNames {
		if fi, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
			inodes[fi.Sys().(*syscall.Stat_t).Ino] = true
		}
	}
	var killed []string
	var pids []int
	for _, p := range processes() {
		if inodes[p.netns] || p.names(it.dirs) {
			if err := syscall.Kill(p.pid, syscall.SIGKILL); err == nil {
				pids = append(pids, p.pid)
				killed = append(killed, fmt.Sprintf("%d (%s)", p.pid, p.comm))
			}
		}
	}
	if len(killed) > 0 {
		report = append(report, "killed "+strings.Join(killed, ", "))
	}
	if left := waitGone(pids, 10*time.Second); len(left) > 0 {
		report = append(report, fmt.Sprintf("still running after SIGKILL: %v", left))
	}
	for _, name := range nsNames {
		if err := netns.DeleteNamed(name); err != nil {
			report = append(report, fmt.Sprintf("removing network namespace %s: %v", name, err))
		} else {
			report = append(report, "removed network namespace "+name+" (with its bridge, TAPs and veths)")
		}
	}
	for _, d := range it.dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			report = append(report, fmt.Sprintf("removing %s: %v", d, err))
		} else {
			report = append(report, "removed "+d)
		}
	}
	return report
}

const netnsDir = "/run/netns"

// namespaces are the env's namespace and those its test made beside it
// (named after it: <ns>-out, <ns>-inet), as they exist now.
func (it *watched) namespaces() []string {
	ents, _ := os.ReadDir(netnsDir)
	var out []string
	for _, e := range ents {
		if n := e.Name(); n == it.ns || strings.HasPrefix(n, it.ns+"-") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// procInfo is a process as /proc shows it.
type procInfo struct {
	pid     int
	comm    string
	cmdline string // NUL-separated
	netns   uint64 // inode of its network namespace
}

// names reports whether the process names one of dirs (or a path under
// it) as an argument or within one.
func (p procInfo) names(dirs []string) bool {
	for _, d := range dirs {
		if d != "" && (strings.Contains(p.cmdline, d+"/") || strings.Contains(p.cmdline, d+"\x00")) {
			return true
		}
	}
	return false
}

// processes lists every process but this one.
func processes() []procInfo {
	ents, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		p := procInfo{pid: pid}
		if fi, err := os.Stat(filepath.Join(dir, "ns", "net")); err == nil {
			p.netns = fi.Sys().(*syscall.Stat_t).Ino
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		p.comm = strings.TrimSpace(string(comm))
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		p.cmdline = string(cmd) + "\x00"
		out = append(out, p)
	}
	return out
}

// waitGone waits until none of pids runs (a zombie counts as gone) and
// returns those still running at the deadline.
func waitGone(pids []int, within time.Duration) []int {
	deadline := time.Now().Add(within)
	for {
		var left []int
		for _, pid := range pids {
			if running(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
