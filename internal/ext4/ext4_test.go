package ext4

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs", "e2fsck", "resize2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
		}
	}
}

func TestInjectWritesFilesDirsAndLinks(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "root.ext4")
	if err := Create(ctx, img, 32<<20, "root"); err != nil {
		t.Fatal(err)
	}
	agent := bytes.Repeat([]byte("agent!"), 100000) // spans many blocks
	files := []File{
		{Path: "/usr/local/lib/banger/banger-vsock-agent", Mode: 0o755, Data: agent},
		{Path: "/etc/systemd/system/banger-agent.service", Mode: 0o644, Data: []byte("[Unit]\n")},
		{Path: "/etc/systemd/system/multi-user.target.wants/banger-agent.service", Mode: fs.ModeSymlink | 0o777, Link: "../banger-agent.service"},
		{Path: "/root/.ssh", Mode: fs.ModeDir | 0o700},
		{Path: "/root/.ssh/authorized_keys", Mode: 0o600, UID: 0, GID: 0, Data: []byte("ssh-ed25519 AAAA test\n")},
		{Path: "/usr/bin/setuid-thing", Mode: 0o755 | fs.ModeSetuid, UID: 1000, GID: 1000, Data: []byte("x")},
	}
	if err := Inject(ctx, img, files); err != nil {
		t.Fatal(err)
	}
	// Injecting again replaces rather than failing.
	files[1].Data = []byte("[Unit]\nDescription=v2\n")
	if err := Inject(ctx, img, files); err != nil {
		t.Fatalf("second inject: %v", err)
	}
	got, err := ReadFile(ctx, img, "/usr/local/lib/banger/banger-vsock-agent")
	if err != nil || !bytes.Equal(got, agent) {
		t.Fatalf("agent read back: %d bytes, %v; want %d identical bytes", len(got), err, len(agent))
	}
	if got, _ := ReadFile(ctx, img, "/etc/systemd/system/banger-agent.service"); string(got) != "[Unit]\nDescription=v2\n" {
		t.Errorf("unit = %q after re-inject", got)
	}
	if target, err := ReadLink(ctx, img, "/etc/systemd/system/multi-user.target.wants/banger-agent.service"); err != nil || target != "../banger-agent.service" {
		t.Errorf("symlink = %q, %v", target, err)
	}
	resolved, err := Resolve(ctx, img, "/etc/systemd/system/multi-user.target.wants/banger-agent.service")
	if err != nil || resolved != "/etc/systemd/system/banger-agent.service" {
		t.Errorf("Resolve = %q, %v", resolved, err)
	}
	out, err := debugfs(ctx, img, false, "stat /usr/bin/setuid-thing")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mode:  04755", "User:  1000", "Group:  1000"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat of setuid file lacks %q:\n%s", want, out)
		}
	}
	if err := Check(ctx, img); err != nil {
		t.Errorf("e2fsck after inject: %v", err)
	}
	if ok, _ := Exists(ctx, img, "/nope"); ok {
		t.Error("Exists(/nope) = true")
	}
}

func TestInjectRejectsRelativePaths(t *testing.T) {
	requireTools(t)
	img := filepath.Join(t.TempDir(), "r.ext4")
	if err := Create(context.Background(), img, 8<<20, "r"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/x", "/etc/../x", "/"} {
		if err := Inject(context.Background(), img, []File{{Path: p, Mode: 0o644}}); err == nil {
			t.Errorf("Inject(%q) succeeded", p)
		}
	}
}

func TestGrow(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "w.ext4")
	if err := Create(ctx, img, 16<<20, "work"); err != nil {
		t.Fatal(err)
	}
	if err := Grow(ctx, img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := debugfs(ctx, img, false, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if got := fsBytes(t, out); got != 64<<20 {
		t.Errorf("filesystem size after Grow = %d, want %d", got, 64<<20)
	}
}

// fsBytes multiplies the block count and size debugfs stats reports.
func fsBytes(t *testing.T, stats string) int64 {
	var count, size int64
	for _, line := range strings.Split(stats, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Block count":
			fmt.Sscan(v, &count)
		case "Block size":
			fmt.Sscan(v, &size)
		}
	}
	return count * size
}

func TestShrinkThenGrow(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seed.ext4")
	if err := Create(ctx, path, 1<<30, "seed"); err != nil {
		t.Fatal(err)
	}
	if err := Inject(ctx, path, []File{{Path: "/keep.txt", Mode: 0o644, Data: []byte("kept\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := Shrink(ctx, path, 16<<20); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Size() >= 256<<20 || fi.Size() < 16<<20 {
		t.Errorf("shrunk to %d bytes; want small, with the 16 MiB headroom", fi.Size())
	}
	blocks, bs, err := geometry(ctx, path)
	if err != nil || blocks*bs != fi.Size() {
		t.Errorf("filesystem %d×%d bytes in a %d-byte file (%v)", blocks, bs, fi.Size(), err)
	}
	if err := Grow(ctx, path, 512<<20); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(ctx, path, "/keep.txt"); err != nil || string(b) != "kept\n" {
		t.Errorf("after shrink and grow: %q, %v", b, err)
	}
}
