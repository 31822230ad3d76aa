package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/client"
	"banger/internal/agentproto"
	"banger/internal/daemon/daemontest"
	"banger/internal/server"
	"banger/internal/testutil/hostileguest"
)

// copyWorld serves a daemon with the fake driver (whose guest is this
// host) and returns a copier talking to it, with VM "dev" running.
func copyWorld(t *testing.T, setup ...func(*daemontest.World)) copier {
	t.Helper()
	w := daemontest.New(t, nil)
	for _, f := range setup {
		f(w)
	}
	sock, err := server.Listen(w.Layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	w.CreateVM(t, "dev")
	cl := client.New(w.Layout.SocketPath)
	var out, errOut bytes.Buffer
	return copier{a: &app{stdout: &out, stderr: &errOut, cl: cl}, cl: cl}
}

func makeTree(t *testing.T, dir string) []byte {
	t.Helper()
	big := make([]byte, 2<<20+5)
	rand.Read(big)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o750)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "key"), []byte("k"), 0o600)
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	os.Symlink("sub/key", filepath.Join(dir, "link"))
	return big
}

func checkTree(t *testing.T, dir string, big []byte) {
	t.Helper()
	for name, want := range map[string]os.FileMode{"run.sh": 0o755, "sub/key": 0o600, "sub": 0o750 | os.ModeDir, "big.bin": 0o644} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want mode %v", filepath.Join(dir, name), fi, err, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, big) {
		t.Errorf("%s/big.bin differs (%d bytes)", dir, len(got))
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "sub/key" {
		t.Errorf("%s/link = %q, %v; want a symlink to sub/key", dir, target, err)
	}
}

func TestCopyBothWays(t *testing.T) {
	c := copyWorld(t)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "tree")
	big := makeTree(t, src)
	guest := t.TempDir() // the fake guest's filesystem is this host's

	// Into an existing guest directory: the tree lands inside it.
	if err := c.in(ctx, src, copyArg{vm: "dev", path: guest}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, filepath.Join(guest, "tree"), big)
	// To a new guest name: the tree becomes it.
	if err := c.in(ctx, src, copyArg{vm: "dev", path: filepath.Join(guest, "renamed")}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, filepath.Join(guest, "renamed"), big)
	// A single file onto a new name.
	if err := c.in(ctx, filepath.Join(src, "run.sh"), copyArg{vm: "dev", path: filepath.Join(guest, "script")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(guest, "script")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("guest script: %v, %v", fi, err)
	}

	host := t.TempDir()
	if err := c.out(ctx, copyArg{vm: "dev", path: filepath.Join(guest, "tree")}, host); err != nil {
		t.Fatal(err)
	}
	checkTree(t, filepath.Join(host, "tree"), big)
	if err := c.out(ctx, copyArg{vm: "dev", path: filepath.Join(guest, "tree")}, filepath.Join(host, "new")); err != nil {
		t.Fatal(err)
	}
	checkTree(t, filepath.Join(host, "new"), big)
	if err := c.out(ctx, copyArg{vm: "dev", path: filepath.Join(guest, "tree", "big.bin")}, filepath.Join(host, "b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(host, "b")); !bytes.Equal(got, big) {
		t.Error("single file copied out differs")
	}
	// '-' writes the guest's archive to stdout as it comes.
	if err := c.out(ctx, copyArg{vm: "dev", path: filepath.Join(guest, "tree")}, "-"); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(c.a.stdout.(*bytes.Buffer))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	slices.Sort(names)
	if want := []string{"tree/", "tree/big.bin", "tree/link", "tree/run.sh", "tree/sub/", "tree/sub/key"}; !slices.Equal(names, want) {
		t.Errorf("archive on stdout holds %v; want %v", names, want)
	}
	if err := c.out(ctx, copyArg{vm: "dev", path: filepath.Join(guest, "nope")}, host); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("copying a missing guest path: %v", err)
	}
	if err := c.in(ctx, src, copyArg{vm: "dev", path: filepath.Join(guest, "script")}); err == nil || !strings.Contains(err.Error(), "onto file") {
		t.Errorf("copying a directory onto a guest file: %v", err)
	}
}

// TestCopyOutOfHostileGuestTree copies a guest tree holding a symlink to
// /etc and one up out of the tree: the copy stops with an error and
// nothing is written outside the destination (the links are never
// followed, the real /etc is untouched).
func TestCopyOutOfHostileGuestTree(t *testing.T) {
	c := copyWorld(t)
	ctx := context.Background()
	guest := filepath.Join(t.TempDir(), "evil")
	os.MkdirAll(filepath.Join(guest, "a"), 0o755)
	os.WriteFile(filepath.Join(guest, "a", "fine"), []byte("x"), 0o644)
	os.Symlink("/etc", filepath.Join(guest, "etc"))
	os.Symlink("../../..", filepath.Join(guest, "a", "up"))
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	os.Mkdir(dst, 0o755)
	err := c.out(ctx, copyArg{vm: "dev", path: guest}, dst)
	if err == nil || !strings.Contains(err.Error(), "refusing symlink") {
		t.Errorf("copying out a tree with links out of it: %v; want a refusal", err)
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 1 || ents[0].Name() != "dst" {
		t.Errorf("beside the destination: %v", ents)
	}
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			t.Errorf("a symlink %s -> %s was created", p, target)
		}
		return nil
	})
}

func TestParseCopyArg(t *testing.T) {
	for in, want := range map[string]copyArg{
		"dev:/root/x": {vm: "dev", path: "/root/x"},
		"dev:rel/y/":  {vm: "dev", path: "/root/rel/y", dirSlash: true},
		"./a:b":       {path: "./a:b"},
		"plain":       {path: "plain"},
		"/abs/p:q":    {path: "/abs/p:q"},
		"-":           {path: "-"},
		"dev:/a/../b": {vm: "dev", path: "/b"},
	} {
		if got, err := parseCopyArg(in); err != nil || got != want {
			t.Errorf("parseCopyArg(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := parseCopyArg("dev:"); err == nil {
		t.Error("dev: with no path was accepted")
	}
}

// TestCopyOutOfHostileAgent has the guest's agent replaced: copy_out
// answers with crafted archives (names with "..", absolute names, links
// out, a device, entries outside the path asked for). Each copy fails
// naming the entry, and nothing is written outside the destination.
func TestCopyOutOfHostileAgent(t *testing.T) {
	var archive []byte
	g := hostileguest.New()
	g.Handle(agentproto.CallCopyOut, func(ctx context.Context, h agentproto.Header, st io.ReadWriter) error {
		if err := agentproto.WriteLine(st, agentproto.Reply{}); err != nil {
			return err
		}
		fw := agentproto.NewFrameWriter(st)
		fw.Write(agentproto.FrameStdout, archive)
		return fw.WriteJSON(agentproto.FrameEnd, agentproto.End{Copy: &agentproto.CopyResult{Entries: 1}})
	})
	c := copyWorld(t, func(w *daemontest.World) { w.Driver.ServeAgent(g.Serve) })
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 5}
	}
	for _, tt := range []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"dotdot", []*tar.Header{{Name: "evil/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("evil/../../escape")}, `".."`},
		{"dotdot-top", []*tar.Header{reg("../escape")}, `".."`},
		{"absolute", []*tar.Header{reg("/tmp/escape")}, "absolute"},
		{"symlink-to-etc", []*tar.Header{{Name: "evil/etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, reg("evil/etc/passwd")}, "refusing symlink"},
		{"symlink-up", []*tar.Header{{Name: "evil/up", Typeflag: tar.TypeSymlink, Linkname: "../../../.."}}, "refusing symlink"},
		{"hardlink-out", []*tar.Header{{Name: "evil/h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, "hard link"},
		{"device", []*tar.Header{{Name: "evil/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, "special file"},
		{"sibling", []*tar.Header{reg("other")}, "not under"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tt.hdrs {
				tw.WriteHeader(h)
				if h.Typeflag == tar.TypeReg {
					tw.Write([]byte("pwned"))
				}
			}
			tw.Close()
			archive = buf.Bytes()
			base := t.TempDir()
			for _, dst := range []string{filepath.Join(base, "existing"), filepath.Join(base, "new")} {
				if strings.HasSuffix(dst, "existing") {
					os.Mkdir(dst, 0o755)
				}
				err := c.out(context.Background(), copyArg{vm: "dev", path: "/root/evil"}, dst)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("copy to %s: %v; want an error with %s", dst, err, tt.want)
				}
			}
			filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
				rel, _ := filepath.Rel(base, p)
				if rel != "." && rel != "existing" && rel != "new" && !strings.HasPrefix(rel, "existing/") && !strings.HasPrefix(rel, "new/") {
					t.Errorf("%s written outside the destination", p)
				}
				if d != nil && d.Type()&(os.ModeSymlink|os.ModeDevice) != 0 {
					t.Errorf("%s created (%v)", p, d.Type())
				}
				return nil
			})
		})
	}
}
