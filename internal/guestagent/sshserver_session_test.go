package guestagent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// client is an x/crypto/ssh connection to the fixture, for the requests
// the ssh command line cannot send on demand (window-change, signal).
func (f *sshFixture) client(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", "127.0.0.1:"+strconv.Itoa(f.port), &ssh.ClientConfig{
		User: f.user(), Auth: []ssh.AuthMethod{ssh.PublicKeys(f.signer)},
		HostKeyCallback: ssh.FixedHostKey(f.hostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *sshFixture) session(t *testing.T) *ssh.Session {
	t.Helper()
	s, err := f.client(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSSHServerInteractiveShell types commands into a login shell on a
// PTY, as a person would; only the commands' own output is checked, never
// the prompt or the echo (the arithmetic makes the echo differ).
func TestSSHServerInteractiveShell(t *testing.T) {
	f := newSSHFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(f.opts(), "-tt", "-p", strconv.Itoa(f.port), f.user()+"@127.0.0.1")
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = strings.NewReader("echo marker-$((6*7))\ntty\nexit 5\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("interactive ssh: %v, want exit 5; output:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "marker-42") || !strings.Contains(out.String(), "/dev/pts/") {
		t.Errorf("interactive shell output lacks the commands' output:\n%s", out.String())
	}
}

// TestSSHServerWindowChange resizes the PTY of a running command, which
// must see the new size.
func TestSSHServerWindowChange(t *testing.T) {
	f := newSSHFixture(t)
	s := f.session(t)
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	s.Stdout = &out
	if err := s.Start("stty size; read go; stty size"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first stty size", 10*time.Second, func() bool { return strings.Contains(out.String(), "24 80") })
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	// The request has no reply; a second one is ordered after it on the
	// channel, and the server handles a channel's requests in order.
	if _, err := s.SendRequest("banger-test-barrier", true, nil); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	if err := s.Wait(); err != nil {
		t.Fatalf("wait: %v; output %q", err, out.String())
	}
	if !strings.Contains(out.String(), "50 132") {
		t.Errorf("stty size after window-change: %q, want 50 132", out.String())
	}
}

// TestSSHServerSignal delivers a signal request to the remote command.
func TestSSHServerSignal(t *testing.T) {
	f := newSSHFixture(t)
	s := f.session(t)
	var out syncBuffer
	s.Stdout = &out
	if err := s.Start("trap 'echo caught USR1; exit 7' USR1; echo ready; while :; do sleep 0.05; done"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the trap to be set", 10*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
	if err := s.Signal(ssh.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err := waitSession(t, s)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 7 || !strings.Contains(out.String(), "caught USR1") {
		t.Errorf("after signal USR1: %v, output %q; want exit 7 from the trap", err, out.String())
	}
}

// TestSSHServerExitSignal checks that a command killed by a signal is
// reported with exit-signal (RFC 4254 6.10), not as an exit status.
func TestSSHServerExitSignal(t *testing.T) {
	f := newSSHFixture(t)
	s := f.session(t)
	s.Stdout = io.Discard
	if err := s.Start("kill -9 $$"); err != nil {
		t.Fatal(err)
	}
	err := waitSession(t, s)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("wait = %v, want an ExitError", err)
	}
	if ee.Signal() != "KILL" || ee.ExitStatus() != 128+9 {
		t.Errorf("exit = signal %q status %d, want signal KILL, status 137", ee.Signal(), ee.ExitStatus())
	}
}

// TestSSHServerEnv checks the env request policy: variables are accepted
// except the dynamic loader's, the ones the login sets from the account,
// and malformed ones.
func TestSSHServerEnv(t *testing.T) {
	f := newSSHFixture(t)
	s := f.session(t)
	tests := []struct {
		name, value string
		accept      bool
	}{
		{"LANG", "C.UTF-8", true},
		{"LC_ALL", "C", true},
		{"BANGER_TEST_VAR", "hello world", true},
		{"LD_PRELOAD", "/tmp/evil.so", false},
		{"HOME", "/tmp", false},
		{"USER", "nobody", false},
		{"PATH", "/tmp", false},
		{"BAD=NAME", "x", false},
		{"", "x", false},
		{"NUL", "a\x00b", false},
	}
	for _, tt := range tests {
		if err := s.Setenv(tt.name, tt.value); (err == nil) != tt.accept {
			t.Errorf("env %q=%q: err %v, want accepted %v", tt.name, tt.value, err, tt.accept)
		}
	}
	out, err := s.Output(`printf '%s|%s|%s|%s|%s|%s' "$LANG" "$LC_ALL" "$BANGER_TEST_VAR" "${LD_PRELOAD-unset}" "$HOME" "$USER"`)
	if err != nil {
		t.Fatal(err)
	}
	home := strings.SplitN(string(out), "|", 6)
	want := "C.UTF-8|C|hello world|unset|"
	if !strings.HasPrefix(string(out), want) || len(home) < 6 || home[4] == "/tmp" || home[5] != f.user() {
		t.Errorf("remote env = %q, want %q then the account's HOME and USER", out, want)
	}

	// The OpenSSH client sends env without asking for a reply.
	got, errOut, code := f.ssh(t, "-o", "SetEnv=BANGER_TEST_VAR=from-openssh", "echo $BANGER_TEST_VAR")
	if got != "from-openssh\n" || code != 0 {
		t.Errorf("ssh -o SetEnv: %q %q code %d", got, errOut, code)
	}
}

func waitSession(t *testing.T, s *ssh.Session) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		s.Close()
		t.Fatal("the session did not end")
		return nil
	}
}
