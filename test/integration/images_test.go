package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/internal/disk"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// imageFiles makes a rootfs, work-seed, kernel, initrd and modules dir.
func imageFiles(t *testing.T) (rootfs, seed, kernel, initrd, modules string) {
	dir := t.TempDir()
	rootfs, seed = filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "seed.ext4")
	kernel, initrd, modules = filepath.Join(dir, "vmlinux"), filepath.Join(dir, "initrd.img"), filepath.Join(dir, "modules")
	mkExt4(t, rootfs, 64)
	mkExt4(t, seed, 16)
	mkKernel(t, kernel)
	os.WriteFile(initrd, []byte("initrd"), 0o644)
	os.MkdirAll(filepath.Join(modules, "6.1.0", "kernel"), 0o755)
	os.WriteFile(filepath.Join(modules, "6.1.0", "kernel", "virtio.ko"), []byte("ko"), 0o644)
	os.Symlink("kernel/virtio.ko", filepath.Join(modules, "6.1.0", "link.ko"))
	return
}

func TestImageRegisterListShowPromoteDelete(t *testing.T) {
	h := newHarness(t)
	rootfs, seed, kernel, initrd, modules := imageFiles(t)

	// The CLI starts the daemon on demand.
	h.ok("image", "register", "--name", "base", "--rootfs", rootfs, "--work-seed", seed,
		"--kernel", kernel, "--initrd", initrd, "--modules", modules)

	var ims []api.Image
	if err := json.Unmarshal([]byte(h.ok("image", "list", "--json")), &ims); err != nil {
		t.Fatal(err)
	}
	if len(ims) != 1 || ims[0].Name != "base" || ims[0].Managed || ims[0].Rootfs != rootfs {
		t.Fatalf("image list = %+v, want one unmanaged image base at %s", ims, rootfs)
	}
	if out := h.ok("image", "show", "base"); !strings.Contains(out, rootfs) || !strings.Contains(out, "managed:") {
		t.Errorf("image show output lacks the rootfs path:\n%s", out)
	}

	var promoted api.Image
	out, errOut, code := h.banger("image", "promote", "base", "--json")
	if code != 0 {
		t.Fatalf("image promote: exit %d, stderr %q", code, errOut)
	}
	if errOut != "" {
		t.Errorf("image promote wrote to a piped stderr: %q", errOut)
	}
	if err := json.Unmarshal([]byte(out), &promoted); err != nil {
		t.Fatal(err)
	}
	if !promoted.Managed || !strings.HasPrefix(promoted.Dir, h.layout.ImagesDir+"/") {
		t.Fatalf("promoted = %+v, want managed under %s", promoted, h.layout.ImagesDir)
	}
	for src, dst := range map[string]string{rootfs: promoted.Rootfs, seed: promoted.WorkSeed, kernel: promoted.Kernel, initrd: promoted.Initrd} {
		if !strings.HasPrefix(dst, promoted.Dir) {
			t.Errorf("%s still points outside the managed dir: %s", src, dst)
		}
		if fileSum(t, src) != fileSum(t, dst) {
			t.Errorf("copy of %s at %s differs", src, dst)
		}
	}
	if target, err := os.Readlink(filepath.Join(promoted.Modules, "6.1.0", "link.ko")); err != nil || target != "kernel/virtio.ko" {
		t.Errorf("modules symlink = %q, %v; want kernel/virtio.ko", target, err)
	}
	if _, err := os.Stat(filepath.Join(promoted.Dir, "manifest.json")); err != nil {
		t.Errorf("manifest missing: %v", err)
	}
	if _, errOut, code := h.banger("image", "promote", "base"); code == 0 || !strings.Contains(errOut, "already managed") {
		t.Errorf("second promote: code %d, stderr %q; want an 'already managed' error", code, errOut)
	}

	h.ok("image", "delete", "base")
	if _, err := os.Stat(promoted.Dir); !os.IsNotExist(err) {
		t.Errorf("managed dir %s still exists after delete (err %v)", promoted.Dir, err)
	}
	if _, err := os.Stat(rootfs); err != nil {
		t.Errorf("original rootfs gone after deleting the managed copy: %v", err)
	}
	if out := h.ok("image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("image list after delete = %s, want []", out)
	}
}

// An unmanaged image only references host files: deleting it, even with
// --force, leaves them alone.
func TestDeleteUnmanagedImageKeepsItsFiles(t *testing.T) {
	h := newHarness(t)
	rootfs, seed, kernel, initrd, modules := imageFiles(t)
	h.ok("image", "register", "--name", "ext", "--rootfs", rootfs, "--work-seed", seed,
		"--kernel", kernel, "--initrd", initrd, "--modules", modules)
	h.ok("image", "register", "--name", "ext2", "--rootfs", rootfs, "--kernel", kernel)
	before := map[string][32]byte{}
	for _, p := range []string{rootfs, seed, kernel, initrd, filepath.Join(modules, "6.1.0", "kernel", "virtio.ko")} {
		before[p] = fileSum(t, p)
	}
	h.ok("image", "delete", "ext")
	h.ok("image", "delete", "--force", "ext2")
	for p, sum := range before {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s gone after deleting the unmanaged images: %v", p, err)
		} else if fileSum(t, p) != sum {
			t.Errorf("%s changed by deleting the unmanaged images", p)
		}
	}
	if out := h.ok("image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("image list after delete = %s, want []", out)
	}
	if _, errOut, code := h.banger("image", "delete", "ext"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("deleting a deleted image: exit %d, stderr %q", code, errOut)
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	rootfs, _, kernel, _, _ := imageFiles(t)
	notExt4 := filepath.Join(t.TempDir(), "junk.img")
	os.WriteFile(notExt4, bytes.Repeat([]byte{1}, 8192), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"--name", "Bad_Name", "--rootfs", rootfs, "--kernel", kernel}, "not a DNS label"},
		{"not ext4", []string{"--name", "a", "--rootfs", notExt4, "--kernel", kernel}, "not an ext4 filesystem"},
		{"missing rootfs", []string{"--name", "a", "--rootfs", "/nonexistent/r.ext4", "--kernel", kernel}, "no such file"},
		{"kernel not elf", []string{"--name", "a", "--rootfs", rootfs, "--kernel", notExt4}, "neither an ELF vmlinux nor a bzImage"},
		{"no kernel", []string{"--name", "a", "--rootfs", rootfs}, "--kernel-ref"},
		{"unknown kernel ref", []string{"--name", "a", "--rootfs", rootfs, "--kernel-ref", "nope"}, "banger kernel pull nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := h.banger(append([]string{"image", "register"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut, tc.want)
			}
		})
	}
	h.ok("image", "register", "--name", "a", "--rootfs", rootfs, "--kernel", kernel)
	if _, errOut, code := h.banger("image", "register", "--name", "a", "--rootfs", rootfs, "--kernel", kernel); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate register: exit %d, stderr %q", code, errOut)
	}
}

func TestSecondDaemonRefusedAndRestartKeepsState(t *testing.T) {
	h := newHarness(t)
	h.writeConfig("web_listen_addr = \"127.0.0.1:0\"\n") // a free port: tests may share the host
	rootfs, _, kernel, _, _ := imageFiles(t)
	h.startDaemon()
	h.ok("image", "register", "--name", "keep", "--rootfs", rootfs, "--kernel", kernel)

	second := exec.Command(filepath.Join(binDir, "bangerd"))
	second.Env = h.env
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Fatalf("second bangerd: err %v, output %q; want refusal naming the running daemon", err, out)
	}
	if _, err := h.cl.Status(context.Background()); err != nil {
		t.Fatalf("first daemon stopped answering after the refused second one: %v", err)
	}
	if fi, err := os.Stat(h.layout.SocketPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v (err %v), want 0600", fi.Mode().Perm(), err)
	}

	h.ok("daemon", "stop")
	if _, _, code := h.banger("daemon", "status"); code != 3 {
		t.Errorf("daemon status after stop: exit %d, want 3 (not running)", code)
	}
	h.startDaemon()
	im, err := h.cl.Image(context.Background(), "keep")
	if err != nil || im.Rootfs != rootfs {
		t.Fatalf("after restart image keep = %+v, %v", im, err)
	}
	var st api.DaemonStatus
	if err := json.Unmarshal([]byte(h.ok("daemon", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.PID <= 0 || st.Version == "" || st.Socket != h.layout.SocketPath || !strings.HasPrefix(st.WebURL, "http://127.0.0.1:") || strings.Contains(st.WebURL, "token") || st.Images != 1 {
		t.Errorf("daemon status --json = %+v", st)
	}
	// Column widths are the table's business: compare with spaces collapsed.
	text := strings.Join(strings.Fields(h.ok("daemon", "status")), " ")
	for _, want := range []string{
		fmt.Sprintf("running: yes (pid %d,", st.PID),
		"version: " + st.Version + " (API " + st.APIVersion + ")",
		"socket: " + h.layout.SocketPath,
		"web UI: " + st.WebURL,
		"images: 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("daemon status lacks %q:\n%s", want, text)
		}
	}
}

// A daemon killed in the middle of a promote leaves neither a half-copied
// directory nor a row pointing at one once it restarts.
func TestCrashDuringPromoteLeavesNothing(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	rootfs, kernel := filepath.Join(dir, "big.ext4"), filepath.Join(dir, "vmlinux")
	mkExt4(t, rootfs, 640)
	fillRandom(t, rootfs, 32<<20, 512<<20)
	mkKernel(t, kernel)
	copyByteByByte(t, h, dir)
	cmd := h.startDaemon()
	h.ok("image", "register", "--name", "big", "--rootfs", rootfs, "--kernel", kernel)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed := false
	_, err := h.cl.PromoteImage(ctx, "big", func(ev api.Event) {
		if !killed && ev.Step == "copy" && ev.Current > 0 && ev.Current < ev.Total {
			killed = true
			cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	if !killed {
		t.Fatalf("promote finished (err %v) before the test could kill the daemon", err)
	}
	if err == nil {
		t.Fatal("promote reported success although the daemon was killed")
	}
	// A process killed in the middle of heavy I/O takes a moment to die
	// and let go of its lock.
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(cmd.Process.Pid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the killed daemon did not exit within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	entries, _ := os.ReadDir(h.layout.ImagesDir)
	if len(entries) == 0 {
		t.Fatal("no staging directory existed at kill time; the test did not exercise the crash")
	}

	h.startDaemon()
	entries, _ = os.ReadDir(h.layout.ImagesDir)
	if len(entries) != 0 {
		t.Errorf("after restart %s holds %v; want the half copy swept", h.layout.ImagesDir, names(entries))
	}
	im, err := h.cl.Image(context.Background(), "big")
	if err != nil || im.Managed || im.Rootfs != rootfs {
		t.Errorf("after restart image = %+v, %v; want the original unmanaged row", im, err)
	}
	// And the promote can simply be run again.
	if _, err := h.cl.PromoteImage(context.Background(), "big", nil); err != nil {
		t.Fatalf("promote after restart: %v", err)
	}
}

// copyByteByByte makes promote copy from srcDir into h's state dir byte
// by byte. Where both share a filesystem that reflinks (btrfs, XFS) the
// copy is one instant clone, leaving no moment to crash in. As root the
// state dir then moves onto a loop-mounted ext4; otherwise the test skips.
// Call it before the daemon starts.
func copyByteByByte(t *testing.T, h *harness, srcDir string) {
	t.Helper()
	stateHome := filepath.Join(h.home, "state") // XDG_STATE_HOME
	if err := os.MkdirAll(stateHome, 0o755); err != nil {
		t.Fatal(err)
	}
	if !reflinks(t, srcDir, stateHome) {
		return
	}
	if os.Geteuid() != 0 {
		t.Skipf("skipping: %s reflinks (btrfs or XFS), so a promote copies instantly and cannot be interrupted; run as root to use a loop-mounted ext4, or set TMPDIR to an ext4 or tmpfs directory", srcDir)
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s reflinks and %s, needed to mount an ext4 state dir, is not installed", srcDir, tool)
		}
	}
	img := filepath.Join(t.TempDir(), "state.ext4")
	mkExt4(t, img, 2048)
	if out, err := exec.Command("mount", "-o", "loop", img, stateHome).CombinedOutput(); err != nil {
		t.Skipf("skipping: %s reflinks and loop-mounting an ext4 state dir failed: %v: %s", srcDir, err, out)
	}
	t.Cleanup(func() {
		h.stopDaemon() // it holds files on the mount
		if out, err := exec.Command("umount", stateHome).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", stateHome, err, out)
			exec.Command("umount", "--lazy", stateHome).Run()
		}
	})
	if reflinks(t, srcDir, stateHome) {
		t.Fatalf("%s still reflinks into the ext4 mounted on %s", srcDir, stateHome)
	}
}

// reflinks reports whether a copy from srcDir to dstDir is a reflink.
func reflinks(t *testing.T, srcDir, dstDir string) bool {
	t.Helper()
	src, dst := filepath.Join(srcDir, ".reflink-probe"), filepath.Join(dstDir, ".reflink-probe")
	if err := os.WriteFile(src, bytes.Repeat([]byte{0xa5}, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	defer os.Remove(dst)
	m, err := disk.Copy(context.Background(), src, dst)
	if err != nil {
		t.Fatalf("probing for reflinks: %v", err)
	}
	return m == disk.Reflink
}

func fillRandom(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, _ := os.Open("/dev/urandom")
	defer src.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, src, n); err != nil {
		t.Fatal(err)
	}
}

func names(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
