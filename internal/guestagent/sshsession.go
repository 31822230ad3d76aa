package guestagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"banger/internal/agentproto"
)

// sshSession is one "session" channel: requests configure it until shell,
// exec or subsystem starts it.
type sshSession struct {
	srv  *SSHServer
	user string
	ch   ssh.Channel
	env  []string
	pty  *ptyRequest

	mu   sync.Mutex // pty and proc: window-change races the start
	proc *proc
}

type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

func (s *SSHServer) serveSession(ctx context.Context, user string, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	ss := &sshSession{srv: s, user: user, ch: ch}
	started := false
	for req := range reqs {
		ok, start := ss.handle(req, started)
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if start != nil && !started {
			started = true
			go func() {
				st := start()
				ch.CloseWrite()
				sendExit(ch, st)
				ch.Close()
			}()
		}
	}
}

// sendExit reports how the session ended, as OpenSSH does.
func sendExit(ch ssh.Channel, st agentproto.ExitStatus) {
	if st.Signal != "" {
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{Signal: st.Signal}))
		return
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Code uint32 }{uint32(st.Code)}))
}

// handle answers one channel request; shell, exec and subsystem return the
// function that runs the session and yields its exit status.
func (ss *sshSession) handle(req *ssh.Request, started bool) (bool, func() agentproto.ExitStatus) {
	switch req.Type {
	case "window-change":
		var w struct{ Cols, Rows, Width, Height uint32 }
		if ssh.Unmarshal(req.Payload, &w) == nil {
			ss.resize(w.Rows, w.Cols)
		}
		return true, nil
	case "signal":
		var sig struct{ Name string }
		if ssh.Unmarshal(req.Payload, &sig) == nil {
			ss.signal(sig.Name)
		}
		return true, nil
	}
	if started {
		return false, nil // env and pty-req too: the process has its own now
	}
	switch req.Type {
	case "env":
		var kv struct{ Name, Value string }
		if ssh.Unmarshal(req.Payload, &kv) != nil || !envAllowed(kv.Name, kv.Value) {
			return false, nil
		}
		ss.env = append(ss.env, kv.Name+"="+kv.Value)
		return true, nil
	case "pty-req":
		var p ptyRequest
		if ssh.Unmarshal(req.Payload, &p) != nil {
			return false, nil
		}
		ss.mu.Lock()
		ss.pty = &p
		ss.mu.Unlock()
		return true, nil
	case "shell":
		return true, func() agentproto.ExitStatus { return ss.run("") }
	case "exec":
		var cmd struct{ Command string }
		if ssh.Unmarshal(req.Payload, &cmd) != nil {
			return false, nil
		}
		return true, func() agentproto.ExitStatus { return ss.run(cmd.Command) }
	case "subsystem":
		var sub struct{ Name string }
		if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" || !ss.ownUser() {
			return false, nil
		}
		return true, ss.sftp
	}
	return false, nil
}

// run starts the user's shell (a login shell, or shell -c command) and
// joins it to the channel.
func (ss *sshSession) run(command string) agentproto.ExitStatus {
	failed := agentproto.ExitStatus{Code: 255}
	acct, err := lookupAccount(ss.user)
	if err != nil {
		fmt.Fprintf(ss.ch.Stderr(), "banger: %v\r\n", err)
		return failed
	}
	spec := procSpec{Argv: []string{acct.Shell, "-c", command}, Env: ss.env, User: ss.user, Stdin: true}
	if command == "" {
		// argv[0] starting with '-' makes a login shell.
		spec.Argv, spec.Arg0 = []string{acct.Shell}, "-"+filepath.Base(acct.Shell)
	}
	p, err := ss.start(spec)
	if err != nil {
		fmt.Fprintf(ss.ch.Stderr(), "banger: %v\r\n", err)
		return failed
	}
	defer p.closeFiles()
	go func() {
		io.Copy(p.stdinWriter(), ss.ch)
		p.closeStdin()
	}()
	var wg sync.WaitGroup
	pump := func(f *os.File, w io.Writer) {
		if f == nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.copyOutput(f, w)
		}()
	}
	pump(p.stdout, ss.ch)
	pump(p.stderr, ss.ch.Stderr())
	<-p.exited
	wg.Wait()
	return p.status
}

// start starts the process on the PTY, if one was requested, at its
// current size; a window-change waits until proc is set, so none is lost.
func (ss *sshSession) start(spec procSpec) (*proc, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pty != nil {
		spec.TTY, spec.Term = true, ss.pty.Term
		spec.Rows, spec.Cols = uint16(ss.pty.Rows), uint16(ss.pty.Cols)
	}
	p, err := startProc(spec)
	ss.proc = p
	return p, err
}

// loginEnv are the variables the login sets from the account; as with
// OpenSSH, env requests do not override them.
var loginEnv = []string{"HOME", "USER", "LOGNAME", "SHELL", "PATH"}

// envAllowed is the policy for env requests. The client already runs
// commands as the user, so this is no security boundary: it keeps the
// account's identity, keeps the dynamic loader's LD_* variables out, and
// refuses what exec would fail on (which would end the session instead).
func envAllowed(name, value string) bool {
	switch {
	case name == "", strings.ContainsAny(name, "=\x00"), strings.ContainsRune(value, 0):
		return false
	case strings.HasPrefix(name, "LD_"), slices.Contains(loginEnv, name):
		return false
	}
	return true
}

func (ss *sshSession) sftp() agentproto.ExitStatus {
	acct, _ := lookupAccount(ss.user)
	srv, err := sftp.NewServer(keepOpen{ss.ch}, sftp.WithServerWorkingDirectory(acct.Home))
	if err != nil {
		return agentproto.ExitStatus{Code: 1}
	}
	defer srv.Close()
	if err := srv.Serve(); err != nil && err != io.EOF {
		ss.srv.log.Debug("sftp session ended", "err", err)
		return agentproto.ExitStatus{Code: 1}
	}
	return agentproto.ExitStatus{}
}

// keepOpen stops the sftp server from closing the channel, which must stay
// open for the exit status.
type keepOpen struct{ ssh.Channel }

func (keepOpen) Close() error { return nil }

// ownUser reports whether the login is the agent's own user; in-process
// sftp runs with the agent's identity, so other users do not get it.
func (ss *sshSession) ownUser() bool {
	acct, err := lookupAccount(ss.user)
	return err == nil && acct.UID == uint32(os.Getuid())
}

func (ss *sshSession) resize(rows, cols uint32) {
	ss.mu.Lock()
	if ss.pty != nil {
		ss.pty.Rows, ss.pty.Cols = rows, cols
	}
	p := ss.proc
	ss.mu.Unlock()
	if p != nil {
		p.resize(uint16(rows), uint16(cols))
	}
}

func (ss *sshSession) signal(name string) {
	ss.mu.Lock()
	p := ss.proc
	ss.mu.Unlock()
	if sig, err := parseSignal(name); err == nil && p != nil {
		p.signal(sig)
	}
}

// forwardTCP serves a direct-tcpip channel: ssh -L and VS Code's tunnels.
func (s *SSHServer) forwardTCP(nch ssh.NewChannel) {
	var d struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &d); err != nil {
		nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(d.Host, strconv.Itoa(int(d.Port))), 10*time.Second)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer conn.Close()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(ch, conn)
		ch.CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, ch)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}
