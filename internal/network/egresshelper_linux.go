package network

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
)

// EgressHelperOptions configure ServeEgressHelper.
type EgressHelperOptions struct {
	// UID is the user whose network the helper serves: the owner of its
	// socket and the only peer (besides root) it answers.
	UID int
	// Dir holds the socket (EgressHelperDir); it must be root's and not
	// writable by others.
	Dir string
	// System reads the user's setup record (the network the requests are
	// checked against) and the links; NewSystem() on a real host.
	System *System
	// Rules writes the tables; HostEgress() on a real host.
	Rules Egress
	Log   *slog.Logger
	// Ready, if set, is called with the socket's path once it accepts.
	Ready func(socket string)
}

// maxHelperConns bounds the connections one helper serves at once: a
// daemon needs one.
const maxHelperConns = 8

// ServeEgressHelper runs the egress helper until ctx ends: it owns the
// egress tables of the network set up for o.UID in the calling thread's
// namespace and applies what that user's daemon asks (see the protocol in
// egresshelper.go). It needs root.
func ServeEgressHelper(ctx context.Context, o EgressHelperOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ns, err := o.System.netns()
	if err != nil {
		return err
	}
	if _, err := helperRecord(o); err != nil {
		return err
	}
	path := EgressHelperSocket(o.Dir, o.UID, ns)
	ln, err := listenHelper(o.Dir, path, o.UID)
	if err != nil {
		return err
	}
	o.Log.Info("egress helper listening", "socket", path, "uid", o.UID)
	if o.Ready != nil {
		o.Ready(path)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // one request at a time across connections
		slots = make(chan struct{}, maxHelperConns)
		conns sync.Map
	)
	closeAll := func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	}
	stop := context.AfterFunc(ctx, closeAll)
	// However the loop ends, the listener and every connection close
	// before the wait, so no idle daemon connection holds the exit up.
	defer func() {
		stop()
		closeAll()
		wg.Wait()
		os.Remove(path)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting on %s: %w", path, err)
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		conns.Store(c, nil)
		if ctx.Err() != nil {
			c.Close() // accepted as ctx ended, after the close of all
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer conns.Delete(c)
			defer c.Close()
			if err := peerAllowed(c, o.UID); err != nil {
				o.Log.Warn("egress helper: refused a connection", "err", err)
				return
			}
			serveHelperConn(c, &mu, o)
		}()
	}
}

// helperRecord is the record of o.UID's network in this namespace.
func helperRecord(o EgressHelperOptions) (Spec, error) {
	rec, err := o.System.ReadRecord()
	if err != nil {
		return Spec{}, err
	}
	if rec == nil || rec.Spec.UID != o.UID {
		return Spec{}, errdefs.Conflict("no banger network is set up for uid %d here; run 'sudo \"$(command -v banger)\" system setup --user %d' first", o.UID, o.UID)
	}
	return rec.Spec, nil
}

// listenHelper listens at path in dir, a directory of root's that nobody
// else may write, with the socket owned by uid, mode 0600.
func listenHelper(dir, path string, uid int) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s must be a directory of root's that nobody else may write (it is %v, uid %d); remove it and start the helper again", dir, fi.Mode(), st.Uid)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		// A socket someone answers on is a running helper's: taking its
		// path would leave it unreachable, and its exit would remove ours.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("an egress helper already answers at %s", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err == nil {
		err = os.Chown(path, uid, -1)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("giving %s to uid %d: %w", path, uid, err)
	}
	return ln, nil
}

// peerAllowed checks the connecting process's uid (SO_PEERCRED): the
// socket's mode already keeps others out; this holds even if it did not.
func peerAllowed(c net.Conn, uid int) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("not a unix connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != uid && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d (pid %d) is not uid %d", cred.Uid, cred.Pid, uid)
	}
	return nil
}

func serveHelperConn(c net.Conn, mu *sync.Mutex, o EgressHelperOptions) {
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		c.SetReadDeadline(time.Time{})
		line, err := readLine(r)
		if err != nil {
			return
		}
		mu.Lock()
		resp := handleHelper(line, o)
		mu.Unlock()
		resp.V = egressHelperVersion
		b, _ := json.Marshal(resp)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(append(b, '\n')); err != nil {
			return
		}
	}
}

func handleHelper(line []byte, o EgressHelperOptions) helperResponse {
	var req helperRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return errResponse(errdefs.Invalid("not a request: %v", err))
	}
	if req.V != egressHelperVersion {
		return errResponse(errdefs.Unsupported("protocol version %d; this helper speaks %d: restart the helper and the daemon from the same banger (run %s)", req.V, egressHelperVersion, setupQuoted))
	}
	if req.Op == "ping" {
		return helperResponse{}
	}
	rec, err := helperRecord(o)
	if err != nil {
		return errResponse(err)
	}
	check := helperCheck{rec: rec, links: o.System.links}
	switch req.Op {
	case "sync":
		vms, err := check.sync(req)
		if err == nil {
			err = o.Rules.Sync(check.spec(), vms)
		}
		if err != nil {
			o.Log.Warn("egress helper: sync", "err", err)
		}
		return errResponse(err)
	case "learn":
		err := check.learn(req)
		if err == nil {
			err = o.Rules.Learn(req.VM, req.IPs, time.Duration(req.TTL)*time.Second)
		}
		return errResponse(err)
	case "denied":
		d, err := o.Rules.Denied()
		resp := errResponse(err)
		resp.Denied = d
		return resp
	}
	return errResponse(errdefs.Invalid("unknown operation %q", printableName(req.Op)))
}

func errResponse(err error) helperResponse {
	if err == nil {
		return helperResponse{}
	}
	return helperResponse{Error: err.Error(), Kind: string(errdefs.KindOf(err))}
}
