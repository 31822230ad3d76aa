package firecracker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"banger/internal/vmm"
)

// consoleTail is the last lines of the console log, to explain a VMM that
// died while starting; "" when there is nothing. It reads only the tail
// and bounds what it returns (vmm.TailLines).
func consoleTail(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	if s := strings.TrimSpace(vmm.TailLines(path, 10)); s != "" {
		return "; its output ends with:\n" + s
	}
	return ""
}

// proc is a VMM process this driver started.
type proc struct {
	pid    int
	start  uint64
	exited chan struct{} // closed once the process is reaped
}

// spawn starts argv detached in its own session, so it outlives the
// daemon, with stdout and stderr (the guest's serial console) appended to
// consoleLog, in directory dir ("": the daemon's). The pid file records
// the pid; the start time goes into the handle.
func spawn(argv []string, dir, consoleLog, pidPath string) (*proc, error) {
	console, err := os.OpenFile(consoleLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening console log: %w", err)
	}
	defer console.Close()
	// Not CommandContext: the VM lives longer than the request that made it.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	p := &proc{pid: cmd.Process.Pid, exited: make(chan struct{})}
	// Reap it if it exits while this daemon runs; after a daemon restart
	// init does.
	go func() { cmd.Wait(); close(p.exited) }()
	p.start, err = vmm.ProcStartTime(p.pid)
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("%s exited right after start: %w", argv[0], err)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(p.pid)+"\n"), 0o600); err != nil {
		p.kill()
		return nil, fmt.Errorf("writing pid file: %w", err)
	}
	return p, nil
}

// kill ends the process and waits until it is reaped.
func (p *proc) kill() {
	syscall.Kill(p.pid, syscall.SIGKILL)
	<-p.exited
}

// apiStartTimeout bounds the wait for a new Firecracker's API socket.
const apiStartTimeout = 10 * time.Second

// waitAPI polls the API socket until Firecracker answers GET /, the
// process exits, or the wait times out.
func waitAPI(ctx context.Context, c *Client, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, apiStartTimeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		qctx, qcancel := context.WithTimeout(ctx, time.Second)
		_, err := c.InstanceInfo(qctx)
		qcancel()
		if err == nil {
			return nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return fmt.Errorf("waiting for the api socket: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-p.exited:
			t.Stop()
			return errors.New("firecracker exited before serving its api socket")
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the api socket: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// instanceID is Firecracker's --id (and the jailer's) for spec: letters,
// digits and '-', at most 64 characters; the VM's name plus a hash of its
// runtime dir, so two VMs never share a chroot.
func instanceID(spec vmm.Spec) string {
	var b strings.Builder
	for _, r := range strings.ToLower(spec.Name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 48 {
		name = name[:48]
	}
	h := fnv.New32a()
	h.Write([]byte(spec.RuntimeDir))
	id := fmt.Sprintf("%08x", h.Sum32())
	if name != "" {
		id = name + "-" + id
	}
	return "banger-" + id
}
