package firecracker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/agentproto"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/firecracker/fcstandin"
)

// The test binary doubles as the firecracker stand-in (see fcstandin.Install).
func TestMain(m *testing.M) {
	fcstandin.RunIfStandIn()
	os.Exit(m.Run())
}

// repoSpec is the in-repo copy of the API spec; tests use it so they
// never depend on a path outside the repository.
var repoSpec = filepath.Join("testdata", "firecracker-api.yaml")

// sharedSpecPath finds shared/spec/firecracker-api.yaml next to the
// module root (the CI checkout's layout).
func sharedSpecPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the package directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "spec", "firecracker-api.yaml")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the shared API spec is not checked out next to the repository: %w", err)
	}
	return p, nil
}

// sharedSpec is sharedSpecPath, or a skip.
func sharedSpec(t *testing.T) string {
	t.Helper()
	p, err := sharedSpecPath()
	if err != nil {
		t.Skip(err)
	}
	return p
}

// standIn installs a stand-in firecracker configured by opts and returns
// a driver that runs it.
func standIn(t *testing.T, opts fcstandin.Options) *firecracker.Driver {
	t.Helper()
	return firecracker.New(firecracker.Options{Binary: standInBinary(t, opts)})
}

// standInBinary installs a stand-in firecracker configured by opts and
// returns its path.
func standInBinary(t *testing.T, opts fcstandin.Options) string {
	t.Helper()
	if opts.SpecPath == "" {
		opts.SpecPath, _ = filepath.Abs(repoSpec)
	}
	if opts.GuestDir == "" {
		opts.GuestDir = t.TempDir()
	}
	bin, err := fcstandin.Install(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// newSpec returns a spec with stand-in kernel and disks. The runtime dir
// is short (unix socket paths are limited to 108 bytes).
func newSpec(t *testing.T) vmm.Spec {
	t.Helper()
	rt, err := os.MkdirTemp("", "bgfc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	dir := t.TempDir()
	files := map[string]string{}
	for _, f := range []string{"vmlinux", "rootfs.ext4", "work.ext4"} {
		files[f] = filepath.Join(dir, f)
		if err := os.WriteFile(files[f], []byte("stand-in "+f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return vmm.Spec{
		Name: "fc-test", RuntimeDir: rt, ConsoleLog: filepath.Join(dir, "console.log"),
		CPUs: 2, MemoryMiB: 256, Kernel: files["vmlinux"],
		Cmdline: "banger.ip=172.16.0.2/24 banger.gw=172.16.0.1",
		Disks: []vmm.Disk{
			{ID: "rootfs", Path: files["rootfs.ext4"]},
			{ID: "work", Path: files["work.ext4"]},
		},
		Net: &vmm.Net{TAP: "bgtap0", MAC: "06:00:ac:10:00:02"},
	}
}

// ping greets the agent: proof that the hybrid vsock reaches it.
func ping(ctx context.Context, conn net.Conn) error {
	c, err := agentproto.NewClient(ctx, conn)
	if err != nil {
		return err
	}
	return c.Close()
}

// rememberSession and recallSession keep a token as the name of a
// session: the stand-in's guest keeps sessions in its memory, which a
// cold boot starts empty and a restore brings back.
func rememberSession(ctx context.Context, conn net.Conn, token string) error {
	c, err := agentproto.NewClient(ctx, conn)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.StartSession(ctx, agentproto.SessionStart{Name: sessionMark + token, Argv: []string{"true"}})
	return err
}

func recallSession(ctx context.Context, conn net.Conn) (string, error) {
	c, err := agentproto.NewClient(ctx, conn)
	if err != nil {
		return "", err
	}
	defer c.Close()
	list, err := c.Sessions(ctx)
	if err != nil {
		return "", err
	}
	for _, s := range list {
		if token, ok := strings.CutPrefix(s.Name, sessionMark); ok {
			return token, nil
		}
	}
	return "", nil
}

const sessionMark = "mark-"

// runtimeLeftovers lists what is left in a runtime dir.
func runtimeLeftovers(t *testing.T, rt string) []string {
	t.Helper()
	ents, err := os.ReadDir(rt)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
