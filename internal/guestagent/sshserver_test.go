package guestagent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/guestagent"
)

// sshFixture is the agent's builtin SSH server on a loopback port, the
// host's client key authorised through the injected key file, and a
// known_hosts pinning the host key the agent reported.
type sshFixture struct {
	port       int
	dir        string
	key        string // private key file
	knownHosts string
	signer     ssh.Signer
	hostKey    ssh.PublicKey
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the ssh client: ", err)
	}
	paths := testPaths(t)
	f := &sshFixture{dir: t.TempDir()}
	f.key, f.signer = writeClientKey(t, f.dir)
	os.MkdirAll(paths.ConfigDir, 0o755)
	if err := os.WriteFile(filepath.Join(paths.ConfigDir, "authorized_key"), ssh.MarshalAuthorizedKey(f.signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := guestagent.NewSSHServer(paths, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// The host learns the key over the agent protocol, as banger will.
	c := newEnv(t, guestagent.Config{Paths: paths, SSH: srv}).connect()
	hk, err := c.HostKeys(testCtx(t, 5*time.Second))
	if err != nil || hk.Server != "builtin" || len(hk.Keys) != 1 {
		t.Fatalf("host keys = %+v, %v", hk, err)
	}
	f.hostKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(hk.Keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	f.knownHosts = filepath.Join(f.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", f.port, hk.Keys[0])
	if err := os.WriteFile(f.knownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeClientKey(t *testing.T, dir string) (string, ssh.Signer) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	return path, signer
}

// opts are the client options every tool gets: no user config, strict
// host key checking against the pinned key, only our key.
func (f *sshFixture) opts() []string { return sshOpts(f.knownHosts, f.key) }

func sshOpts(knownHosts, key string) []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", key}
}

func (f *sshFixture) user() string { return currentUser() }

func (f *sshFixture) run(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return stdout.String(), stderr.String(), code
}

func (f *sshFixture) ssh(t *testing.T, extra ...string) (string, string, int) {
	args := append(f.opts(), "-p", strconv.Itoa(f.port))
	return f.run(t, "ssh", append(append(args, extra[:len(extra)-1]...), f.user()+"@127.0.0.1", extra[len(extra)-1])...)
}

func TestSSHServerWithOpenSSHClient(t *testing.T) {
	f := newSSHFixture(t)

	out, errOut, code := f.ssh(t, "echo hello; echo oops >&2; exit 3")
	if out != "hello\n" || errOut != "oops\n" || code != 3 {
		t.Errorf("ssh exec: stdout %q stderr %q code %d; want hello, oops, 3", out, errOut, code)
	}
	out, _, code = f.ssh(t, "-tt", "tty; stty size")
	if !strings.HasPrefix(out, "/dev/pts/") || code != 0 {
		t.Errorf("ssh -tt tty: %q code %d", out, code)
	}

	// The pinned key is what makes StrictHostKeyChecking pass: pinning
	// another key makes the client refuse.
	wrong := filepath.Join(f.dir, "wrong_known_hosts")
	_, other := writeClientKey(t, t.TempDir())
	os.WriteFile(wrong, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", f.port, ssh.MarshalAuthorizedKey(other.PublicKey()))), 0o644)
	args := append(sshOpts(wrong, f.key), "-p", strconv.Itoa(f.port), f.user()+"@127.0.0.1", "true")
	if _, _, code := f.run(t, "ssh", args...); code != 255 {
		t.Errorf("ssh with a wrong pinned key exited %d, want 255", code)
	}
	// An unauthorised client key is refused.
	badKey, _ := writeClientKey(t, t.TempDir())
	args = append(sshOpts(f.knownHosts, badKey), "-p", strconv.Itoa(f.port), f.user()+"@127.0.0.1", "true")
	if _, _, code := f.run(t, "ssh", args...); code != 255 {
		t.Errorf("ssh with an unauthorised key exited %d, want 255", code)
	}
}

func TestSSHServerSFTPAndSCP(t *testing.T) {
	f := newSSHFixture(t)
	local := filepath.Join(f.dir, "payload.bin")
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	os.WriteFile(local, payload, 0o640)
	remoteDir := t.TempDir()
	port := strconv.Itoa(f.port)
	target := f.user() + "@127.0.0.1"

	batch := filepath.Join(f.dir, "batch")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s/via-sftp\nget %s/via-sftp %s/back\n", local, remoteDir, remoteDir, f.dir)), 0o644)
	if _, errOut, code := f.run(t, "sftp", append(f.opts(), "-P", port, "-b", batch, target)...); code != 0 {
		t.Fatalf("sftp exited %d: %s", code, errOut)
	}
	for _, p := range []string{filepath.Join(remoteDir, "via-sftp"), filepath.Join(f.dir, "back")} {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, payload) {
			t.Errorf("%s differs from what was sent", p)
		}
	}

	// scp speaks sftp by default; -O is the legacy protocol over exec.
	for _, mode := range []string{"", "-O"} {
		dst := filepath.Join(remoteDir, "via-scp"+mode)
		args := append(f.opts(), "-P", port)
		if mode != "" {
			args = append(args, mode)
		}
		if _, errOut, code := f.run(t, "scp", append(args, local, target+":"+dst)...); code != 0 {
			t.Fatalf("scp %s exited %d: %s", mode, code, errOut)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, payload) {
			t.Errorf("scp %s: copy differs", mode)
		}
	}
}

func TestSSHServerRsync(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("needs rsync: ", err)
	}
	f := newSSHFixture(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(src, "a", "b", "f.txt"), []byte("rsynced"), 0o600)
	dst := t.TempDir()
	rsh := "ssh " + strings.Join(f.opts(), " ") + " -p " + strconv.Itoa(f.port)
	if _, errOut, code := f.run(t, "rsync", "-a", "-e", rsh, src+"/", f.user()+"@127.0.0.1:"+dst+"/"); code != 0 {
		t.Fatalf("rsync exited %d: %s", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "a", "b", "f.txt")); string(got) != "rsynced" {
		t.Errorf("rsynced file = %q", got)
	}
}

func TestSSHServerLocalForward(t *testing.T) {
	f := newSSHFixture(t)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	client, err := ssh.Dial("tcp", "127.0.0.1:"+strconv.Itoa(f.port), &ssh.ClientConfig{
		User: f.user(), Auth: []ssh.AuthMethod{ssh.PublicKeys(f.signer)},
		HostKeyCallback: ssh.FixedHostKey(f.hostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := client.Dial("tcp", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping through the tunnel"))
	buf := make([]byte, 23)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping through the tunnel" {
		t.Errorf("forwarded echo = %q, %v", buf, err)
	}
}
