package fcstandin

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseJailerArgs(t *testing.T) {
	dir := t.TempDir()
	fc := filepath.Join(dir, "firecracker-v1.16")
	other := filepath.Join(dir, "qemu")
	for _, f := range []string{fc, other} {
		os.WriteFile(f, nil, 0o755)
	}
	got, err := parseJailerArgs([]string{"--id", "vm-1", "--exec-file", fc, "--uid", "10", "--gid", "11",
		"--chroot-base-dir", "/jail", "--cgroup-version", "2", "--cgroup", "memory.max=1", "--cgroup", "cpu.max=2",
		"--resource-limit", "no-file=64", "--netns", dir, "--", "--api-sock", "/api.sock"})
	if err != nil {
		t.Fatal(err)
	}
	want := &JailerRun{PID: os.Getpid(), ID: "vm-1", ExecFile: fc, UID: 10, GID: 11, Chroot: "/jail/firecracker-v1.16/vm-1/root",
		NetNS: dir, CgroupVersion: 2, ParentCgroup: "firecracker-v1.16", Cgroups: []string{"memory.max=1", "cpu.max=2"},
		ResourceLimits: []string{"no-file=64"}, Args: []string{"--api-sock", "/api.sock"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseJailerArgs (-want +got):\n%s", diff)
	}
	if got := got.cgroupDirs("/cg"); !cmp.Equal(got, []string{"/cg/firecracker-v1.16/vm-1"}) {
		t.Errorf("v2 cgroup dirs = %v", got)
	}

	base := []string{"--id", "vm1", "--exec-file", fc, "--uid", "1", "--gid", "1"}
	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"no id":           {[]string{"--exec-file", fc, "--uid", "1", "--gid", "1"}, "--id, --exec-file, --uid and --gid are required"},
		"bad id":          {[]string{"--id", "vm_1", "--exec-file", fc, "--uid", "1", "--gid", "1"}, "Invalid instance ID: vm_1"},
		"long id":         {[]string{"--id", strings.Repeat("a", 65), "--exec-file", fc, "--uid", "1", "--gid", "1"}, "Invalid instance ID"},
		"not firecracker": {[]string{"--id", "vm1", "--exec-file", other, "--uid", "1", "--gid", "1"}, `must contain "firecracker"`},
		"missing exec":    {[]string{"--id", "vm1", "--exec-file", fc + "-gone", "--uid", "1", "--gid", "1"}, "not a file"},
		"uid not number":  {[]string{"--id", "vm1", "--exec-file", fc, "--uid", "root", "--gid", "1"}, `--uid "root" is not a number`},
		"unknown flag":    {append(base, "--seccomp-level", "2"), "Found argument '--seccomp-level'"},
		"flag no value":   {append(base, "--netns"), "--netns needs a value"},
		"bad cgroup":      {append(base, "--cgroup", "memory"), "Invalid format for cgroup: memory"},
		"bad version":     {append(base, "--cgroup-version", "3"), "invalid cgroup version 3"},
		"bad limit":       {append(base, "--resource-limit", "cpu=1"), "Invalid resource argument: cpu=1"},
		"missing netns":   {append(base, "--netns", dir+"/gone"), "Failed to open netns"},
		"daemonize":       {append(base, "--daemonize"), "does not daemonize"},
	} {
		if _, err := parseJailerArgs(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: parseJailerArgs = %v, want an error with %q", name, err, tt.want)
		}
	}
}

// TestJailWithoutChroot: a stand-in that may not chroot (here, run as
// an unprivileged user) resolves every path it is given under the jail.
func TestJailWithoutChroot(t *testing.T) {
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "fcsjail")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	jail := filepath.Join(dir, "jail")
	os.Mkdir(jail, 0o755)
	for _, f := range []string{"vmlinux", "metrics.json"} {
		os.WriteFile(filepath.Join(jail, f), nil, 0o600)
		if os.Geteuid() == 0 {
			os.Chown(filepath.Join(jail, f), 4242, 4242)
		}
	}
	// The stand-in is this binary; an unprivileged user must be able to
	// run it and read the spec, so both are copied where it can.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, spec := filepath.Join(dir, "firecracker"), filepath.Join(dir, "spec.yaml")
	for src, dst := range map[string]string{self: bin, specPath: spec} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, data, 0o755)
	}
	cmd := exec.Command(bin, "--api-sock", "/api.sock", "--id", "vm1")
	cmd.Env = []string{EnvStandIn + "=1", EnvSpec + "=" + spec, EnvJail + "=" + jail, EnvJailUID + "=4242", EnvJailGID + "=4242"}
	if os.Geteuid() == 0 {
		os.Chown(jail, 4242, 4242)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	c := unixClient(filepath.Join(jail, "api.sock"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := c.Get("http://localhost/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no api socket in the jail; stand-in output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	put := func(path, body string) (int, string) {
		req, _ := http.NewRequest("PUT", "http://localhost"+path, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	for _, r := range [][2]string{
		{"/boot-source", `{"kernel_image_path":"/vmlinux"}`},
		{"/metrics", `{"metrics_path":"/metrics.json"}`},
		{"/vsock", `{"guest_cid":3,"uds_path":"/v.sock"}`},
	} {
		if code, body := put(r[0], r[1]); code != http.StatusNoContent {
			t.Errorf("PUT %s %s = %d %s", r[0], r[1], code, body)
		}
	}
	if _, err := os.Stat(filepath.Join(jail, "v.sock")); err != nil {
		t.Errorf("the vsock socket is not in the jail: %v", err)
	}
	if code, body := put("/boot-source", `{"kernel_image_path":"`+filepath.Join(jail, "vmlinux")+`"}`); code != 400 {
		t.Errorf("a host path for the kernel = %d %s, want 400: it is not in the jail", code, body)
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}
