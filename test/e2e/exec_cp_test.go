//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runIO runs banger in the namespace with stdin from in and stdout to
// out (files, so large streams need no buffer): stderr, exit code.
func (e *env) runIO(in io.Reader, out io.Writer, args ...string) (string, int) {
	e.t.Helper()
	cmd := e.inNS(filepath.Join(binDir, "banger"), args...)
	var errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return errb.String(), ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running banger %v: %v", args, err)
	}
	return errb.String(), 0
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func randomFile(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
}

// TestExecAndCopy drives 'vm exec' and 'vm cp' against one busybox guest
// (agent as PID 1, no OpenSSH): exit codes, a 50 MB binary round trip
// through stdin and stdout, a TTY with -t, and a tree with modes, a
// symlink and a 100 MB file copied in and back out; a guest tree with
// links to /etc and out of itself writes nothing outside the destination.
func TestExecAndCopy(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "bb", "--image", "bb", "--memory", "512", "--disk-size", "1G")

	t.Run("exit codes", func(t *testing.T) {
		for script, want := range map[string]int{"true": 0, "exit 3": 3, "kill -TERM $$": 143} {
			if _, _, code := e.run("vm", "exec", "bb", "--", "sh", "-c", script); code != want {
				t.Errorf("vm exec -- sh -c %q: exit %d; want %d", script, code, want)
			}
		}
		if _, stderr, code := e.run("vm", "exec", "bb", "--cwd", "/root", "--env", "A=b c", "--", "sh", "-c", `[ "$PWD $A" = "/root b c" ]`); code != 0 {
			t.Errorf("--cwd and --env: exit %d, %s", code, stderr)
		}
	})

	t.Run("binary stdin to stdout", func(t *testing.T) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
		randomFile(t, in, 50<<20)
		fin, _ := os.Open(in)
		defer fin.Close()
		fout, _ := os.Create(out)
		defer fout.Close()
		if stderr, code := e.runIO(fin, fout, "vm", "exec", "bb", "--", "cat"); code != 0 {
			t.Fatalf("vm exec -- cat: exit %d, %s", code, stderr)
		}
		if a, b := fileSHA(t, in), fileSHA(t, out); a != b {
			fi, _ := os.Stat(out)
			t.Errorf("50 MB through cat: sha256 %s in, %s out (%d bytes)", a, b, fi.Size())
		}
	})

	t.Run("tty", func(t *testing.T) {
		if out, _, code := e.run("vm", "exec", "-t", "bb", "--", "sh", "-c", "[ -t 0 ] && [ -t 1 ] && tty"); code != 0 || !strings.Contains(out, "/dev/pts/") {
			t.Errorf("vm exec -t: exit %d, %q; want a /dev/pts terminal", code, out)
		}
		if out, _, code := e.run("vm", "exec", "bb", "--", "sh", "-c", "[ -t 0 ] || echo pipes"); code != 0 || out != "pipes\n" {
			t.Errorf("vm exec without -t, piped: exit %d, %q; want no terminal", code, out)
		}
	})

	t.Run("cp both ways", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "tree")
		os.MkdirAll(filepath.Join(src, "sub"), 0o750)
		os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
		os.WriteFile(filepath.Join(src, "sub", "secret"), []byte("s\n"), 0o600)
		os.Symlink("sub/secret", filepath.Join(src, "link"))
		randomFile(t, filepath.Join(src, "big.bin"), 100<<20)
		sum := fileSHA(t, filepath.Join(src, "big.bin"))

		e.ok("vm", "cp", src, "bb:/root/")
		got := e.ok("vm", "exec", "bb", "--", "sh", "-c",
			"cd /root/tree && stat -c '%a %n' run.sh sub sub/secret && readlink link && sha256sum big.bin && ./run.sh")
		want := "755 run.sh\n750 sub\n600 sub/secret\nsub/secret\n" + sum + "  big.bin\nran\n"
		if got != want {
			t.Errorf("in the guest:\n%s\nwant:\n%s", got, want)
		}

		back := filepath.Join(t.TempDir(), "back")
		e.ok("vm", "cp", "bb:/root/tree", back)
		for name, mode := range map[string]os.FileMode{"run.sh": 0o755, "sub": 0o750 | os.ModeDir, "sub/secret": 0o600} {
			if fi, err := os.Lstat(filepath.Join(back, name)); err != nil || fi.Mode() != mode {
				t.Errorf("%s back on the host: %v, %v; want mode %v", name, fi, err, mode)
			}
		}
		if target, err := os.Readlink(filepath.Join(back, "link")); err != nil || target != "sub/secret" {
			t.Errorf("link back on the host: %q, %v", target, err)
		}
		if got := fileSHA(t, filepath.Join(back, "big.bin")); got != sum {
			t.Errorf("big.bin back on the host: sha256 %s; want %s", got, sum)
		}
	})

	t.Run("hostile guest tree", func(t *testing.T) {
		e.ok("vm", "exec", "bb", "--", "sh", "-c", "mkdir -p /root/evil/a && echo x > /root/evil/a/f && ln -s /etc /root/evil/etc && ln -s ../../.. /root/evil/a/up")
		base := t.TempDir()
		dst := filepath.Join(base, "dst")
		os.Mkdir(dst, 0o755)
		_, stderr, code := e.run("vm", "cp", "bb:/root/evil", dst)
		if code == 0 || !strings.Contains(stderr, "refusing symlink") {
			t.Errorf("copying out a tree with links out of it: exit %d, %q; want a refusal", code, stderr)
		}
		ents, _ := os.ReadDir(base)
		if len(ents) != 1 {
			t.Errorf("entries beside the destination: %v", ents)
		}
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if d != nil && d.Type()&os.ModeSymlink != 0 {
				t.Errorf("symlink %s created on the host", p)
			}
			return nil
		})
	})
}

// TestCopyFigures measures 'vm cp' of a ~300 MB tree (three 80 MB files
// and 600 files of 100 KB) out of a busybox guest against 'scp -r' from
// the same guest (its SSH server is the agent's, with sftp) in the same
// run, and the same into the guest, and logs the ratios. It asserts
// nothing about time; run it with BANGER_E2E_FIGURES=1.
func TestCopyFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure vm cp against scp")
	}
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.ok("vm", "create", "--name", "bb", "--image", "bb", "--memory", "1G", "--disk-size", "3G")
	v := e.vm("bb")
	dir := t.TempDir()
	src := filepath.Join(dir, "bench")
	os.MkdirAll(filepath.Join(src, "small"), 0o755)
	for i := range 3 {
		randomFile(t, filepath.Join(src, fmt.Sprintf("big%d", i)), 80<<20)
	}
	for i := range 600 {
		randomFile(t, filepath.Join(src, "small", fmt.Sprintf("f%03d", i)), 100<<10)
	}
	sshDir := filepath.Join(e.home, "config", "banger", "ssh")
	scp := func(args ...string) time.Duration {
		t.Helper()
		full := append([]string{"-r", "-q", "-i", filepath.Join(sshDir, "id_ed25519"), "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile=" + filepath.Join(sshDir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
			"-o", "HostKeyAlias=bb.vm"}, args...)
		t0 := time.Now()
		if out, err := e.inNS("scp", full...).CombinedOutput(); err != nil {
			t.Fatalf("scp %v: %v\n%s", args, err, out)
		}
		return time.Since(t0)
	}
	timed := func(args ...string) time.Duration {
		t.Helper()
		t0 := time.Now()
		e.ok(args...)
		return time.Since(t0)
	}
	cpIn := timed("vm", "cp", src, "bb:/root/cp-in")
	scpIn := scp(src, "root@"+v.IP+":/root/scp-in")
	cpOut := timed("vm", "cp", "bb:/root/cp-in", filepath.Join(dir, "cp-out"))
	scpOut := scp("root@"+v.IP+":/root/cp-in", filepath.Join(dir, "scp-out"))
	for _, d := range []string{"cp-out", "scp-out"} {
		if got, want := fileSHA(t, filepath.Join(dir, d, "big2")), fileSHA(t, filepath.Join(src, "big2")); got != want {
			t.Errorf("%s/big2 differs from the source", d)
		}
	}
	t.Logf("300 MB tree out of the guest: vm cp %s, scp -r %s, ratio %.2f", cpOut.Round(time.Millisecond), scpOut.Round(time.Millisecond), cpOut.Seconds()/scpOut.Seconds())
	t.Logf("300 MB tree into the guest: vm cp %s, scp -r %s, ratio %.2f", cpIn.Round(time.Millisecond), scpIn.Round(time.Millisecond), cpIn.Seconds()/scpIn.Seconds())
}
