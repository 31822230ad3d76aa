package guestagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// procSpec describes a process started for exec or an SSH channel.
type procSpec struct {
	Argv       []string
	Arg0       string // argv[0] to pass instead of Argv[0], e.g. "-bash"
	Env        []string
	Dir        string
	User       string
	TTY        bool
	Rows, Cols uint16
	Term       string
	Stdin      bool // a pipe; otherwise /dev/null (ignored with TTY)
}

// proc is a running process in its own session (so its process group can be
// killed as one) with its stdio on pipes or a PTY.
type proc struct {
	cmd    *exec.Cmd
	pty    *os.File // master, with TTY
	stdin  *os.File // write end of the stdin pipe
	stdout *os.File // read end, or the master with TTY
	stderr *os.File // read end; nil with TTY
	exited chan struct{}
	status agentproto.ExitStatus
	exitAt time.Time
	once   sync.Once
}

// After the process exits, its output is drained until it has been idle for
// drainIdle (a background child may keep the pipe open forever), and never
// for longer than drainMax past the exit.
const (
	drainIdle = 250 * time.Millisecond
	drainMax  = 5 * time.Second
)

func startProc(spec procSpec) (*proc, error) {
	if len(spec.Argv) == 0 {
		return nil, errdefs.Invalid("empty argv")
	}
	cmd, err := prepareCmd(spec)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	var childEnds []*os.File
	if spec.TTY {
		childEnds, err = p.attachPTY(spec)
	} else {
		childEnds, err = p.attachPipes(spec.Stdin)
	}
	if err == nil {
		err = cmd.Start()
	}
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		p.closeFiles()
		return nil, fmt.Errorf("starting %s: %w", spec.Argv[0], err)
	}
	go p.wait()
	return p, nil
}

// prepareCmd resolves the user, environment, working directory and
// executable the way a login would.
func prepareCmd(spec procSpec) (*exec.Cmd, error) {
	acct, err := lookupAccount(spec.User)
	if err != nil {
		return nil, err
	}
	term := ""
	if spec.TTY {
		term = orDefault(spec.Term, "xterm-256color")
	}
	env := processEnv(acct, term, spec.Env)
	path, err := lookPath(spec.Argv[0], env)
	if err != nil {
		return nil, err
	}
	dir := spec.Dir
	if dir == "" {
		dir = acct.Home
		if _, err := os.Stat(dir); err != nil {
			dir = "/"
		}
	}
	cmd := &exec.Cmd{Path: path, Args: slices.Clone(spec.Argv), Env: env, Dir: dir}
	if spec.Arg0 != "" {
		cmd.Args[0] = spec.Arg0
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if spec.User != "" && acct.UID != uint32(os.Getuid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	return cmd, nil
}

func (p *proc) attachPTY(spec procSpec) ([]*os.File, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	if spec.Rows > 0 && spec.Cols > 0 {
		if err := setWinsize(master, spec.Rows, spec.Cols); err != nil {
			master.Close()
			slave.Close()
			return nil, err
		}
	}
	p.pty, p.stdout = master, master
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr.Setctty = true
	p.cmd.SysProcAttr.Ctty = 0
	return []*os.File{slave}, nil
}

func (p *proc) attachPipes(withStdin bool) ([]*os.File, error) {
	var child []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			err = fmt.Errorf("creating pipe: %w", err)
		}
		return r, w, err
	}
	if withStdin {
		r, w, err := pipe()
		if err != nil {
			return child, err
		}
		p.cmd.Stdin, p.stdin = r, w
		child = append(child, r)
	}
	for _, out := range []*io.Writer{&p.cmd.Stdout, &p.cmd.Stderr} {
		r, w, err := pipe()
		if err != nil {
			return child, err
		}
		*out = w
		child = append(child, w)
		if p.stdout == nil {
			p.stdout = r
		} else {
			p.stderr = r
		}
	}
	return child, nil
}

func (p *proc) wait() {
	p.cmd.Wait() // the status is in ProcessState
	p.status = exitStatus(p.cmd.ProcessState)
	p.exitAt = time.Now()
	close(p.exited)
	for _, f := range []*os.File{p.stdout, p.stderr} {
		if f != nil {
			f.SetReadDeadline(p.exitAt.Add(drainIdle))
		}
	}
}

// exitStatus reads how a process ended; Code -1 without Signal means the
// agent could not tell (wait failed).
func exitStatus(ps *os.ProcessState) agentproto.ExitStatus {
	if ps == nil {
		return agentproto.ExitStatus{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return agentproto.ExitStatus{Code: -1, Signal: signalName(ws.Signal())}
	}
	return agentproto.ExitStatus{Code: ps.ExitCode()}
}

// copyOutput copies f to w until EOF or the drain after exit ends.
func (p *proc) copyOutput(f *os.File, w io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if drained(err) {
				return nil
			}
			return fmt.Errorf("reading output: %w", err)
		}
		select {
		case <-p.exited:
			f.SetReadDeadline(earliest(time.Now().Add(drainIdle), p.exitAt.Add(drainMax)))
		default:
		}
	}
}

func drained(err error) bool {
	return err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling process %d: %w", p.pid(), err)
	}
	return nil
}

// signalGroup signals the process group the process leads (it has its
// own session), so a Ctrl-C forwarded from the host reaches a pipeline or
// a shell's children as it would on a local terminal.
func (p *proc) signalGroup(sig syscall.Signal) error {
	if err := unix.Kill(-p.pid(), sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signalling process group %d: %w", p.pid(), err)
	}
	return nil
}

// killGroup kills the whole process group the process leads.
func (p *proc) killGroup() {
	unix.Kill(-p.pid(), unix.SIGKILL)
	p.cmd.Process.Kill()
}

func (p *proc) resize(rows, cols uint16) error {
	if p.pty == nil {
		return nil
	}
	return setWinsize(p.pty, rows, cols)
}

// stdinWriter is where stdin bytes go: the pipe, or the PTY master.
func (p *proc) stdinWriter() io.Writer {
	if p.pty != nil {
		return p.pty
	}
	return p.stdin
}

// closeStdin delivers EOF: closing the pipe, or typing ^D on a terminal.
func (p *proc) closeStdin() {
	if p.pty != nil {
		p.pty.Write([]byte{4})
		return
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
}

func (p *proc) closeFiles() {
	p.once.Do(func() {
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
			if f != nil {
				f.Close()
			}
		}
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
