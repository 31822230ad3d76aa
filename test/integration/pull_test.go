package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/testutil/testregistry"
)

// tarEntry is one file of a test layer.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
}

func testLayer(t *testing.T, es ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pushImage pushes layers (oldest first) as reg's repo:tag.
func pushImage(t *testing.T, reg *testregistry.Registry, repoTag string, opts []remote.Option, layers ...v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint, cf.Config.Env, cf.Config.WorkingDir, cf.Config.User = []string{"/bin/app"}, []string{"A=1"}, "/work", "app"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return reg.Push(t, repoTag, img, opts...)
}

func baseLayers(t *testing.T) []v1.Layer {
	return []v1.Layer{
		testLayer(t,
			tarEntry{name: "bin", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "bin/su", body: "su", mode: 0o4755},
			tarEntry{name: "etc", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "etc/old", body: "old"},
			tarEntry{name: "home", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "home/app", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		),
		testLayer(t,
			tarEntry{name: "etc/.wh.old"},
			tarEntry{name: "etc/hostname", body: "box\n", mode: 0o644},
		),
	}
}

// debugfsOut runs a read-only debugfs request.
func debugfsOut(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %q: %v: %s", req, err, out)
	}
	return string(out)
}

func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// imagesDirEntries lists the images directory.
func (h *harness) imagesDirEntries() []string {
	es, _ := os.ReadDir(h.layout.ImagesDir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// requireE2fsprogs skips tests that build images where e2fsprogs is
// missing (scripts/install-deps installs it).
func requireE2fsprogs(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"e2fsck", "tune2fs", "resize2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
		}
	}
}

func TestImagePullEndToEnd(t *testing.T) {
	requireE2fsprogs(t)
	reg := testregistry.New(t, nil)
	ref := pushImage(t, reg, "team/app:v1", nil, baseLayers(t)...)
	h := newHarness(t)
	kdir := t.TempDir()
	kernel, initrd := filepath.Join(kdir, "vmlinux"), filepath.Join(kdir, "initrd.img")
	mkKernel(t, kernel)
	os.WriteFile(initrd, []byte("initrd"), 0o644)

	var im api.Image
	if err := json.Unmarshal([]byte(h.ok("image", "pull", ref, "--kernel", kernel, "--initrd", initrd, "--json")), &im); err != nil {
		t.Fatal(err)
	}
	if im.Name != "app-v1" || !im.Managed || im.Source != "pull" || !strings.HasPrefix(im.Digest, "sha256:") ||
		!strings.HasPrefix(im.Dir, h.layout.ImagesDir+"/") || im.Rootfs != filepath.Join(im.Dir, "rootfs.ext4") ||
		im.Kernel != filepath.Join(im.Dir, "kernel") || im.Initrd != filepath.Join(im.Dir, "initrd") {
		t.Fatalf("pulled image = %+v", im)
	}
	e2fsckClean(t, im.Rootfs)
	if got := debugfsOut(t, im.Rootfs, "cat /etc/hostname"); !strings.Contains(got, "box") {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := debugfsOut(t, im.Rootfs, "stat /bin/su"); !strings.Contains(got, "Mode:  04755") {
		t.Errorf("/bin/su lost its setuid bit:\n%s", got)
	}
	if got := debugfsOut(t, im.Rootfs, "stat /home/app"); !strings.Contains(got, "User:  1000   Group:  1000") {
		t.Errorf("/home/app lost its owner:\n%s", got)
	}
	if got := debugfsOut(t, im.Rootfs, "stat /etc/old"); !strings.Contains(got, "File not found") {
		t.Errorf("/etc/old survived its whiteout:\n%s", got)
	}

	// The manifest records digest, config and sizes.
	var man struct {
		api.Image
		Pull api.PullInfo `json:"pull"`
	}
	data, err := os.ReadFile(filepath.Join(im.Dir, "manifest.json"))
	if err != nil || json.Unmarshal(data, &man) != nil {
		t.Fatalf("manifest.json: %v\n%s", err, data)
	}
	p := man.Pull
	if p.Digest != im.Digest || p.Ref != ref || len(p.Layers) != 2 || p.Config.WorkingDir != "/work" || p.Config.User != "app" ||
		p.Config.Entrypoint[0] != "/bin/app" || p.RootfsSize != im.Size || p.ContentSize == 0 || p.CompressedSize == 0 || p.Files == 0 || man.Name != im.Name {
		t.Errorf("manifest pull info = %+v", p)
	}

	// A second pull of the digest is instant: no blob fetched, no rebuild.
	gets := reg.BlobGETs()
	start := time.Now()
	out := h.ok("image", "pull", ref, "--kernel", kernel)
	if took := time.Since(start); !strings.Contains(out, "image app-v1 is up to date") || took > 5*time.Second {
		t.Errorf("second pull took %v and said %q", took, out)
	}
	if got := reg.BlobGETs() - gets; got != 0 {
		t.Errorf("second pull fetched %d blobs", got)
	}
	if out := h.ok("image", "show", "app-v1"); !strings.Contains(out, im.Digest) || !strings.Contains(out, "pull") {
		t.Errorf("image show:\n%s", out)
	}

	// Under another name it is built again from the cache, downloading nothing.
	h.ok("image", "pull", ref, "--name", "copy", "--kernel", kernel, "--size", "600M")
	if got := reg.BlobGETs() - gets; got != 0 {
		t.Errorf("pull under a new name fetched %d blobs", got)
	}
	cp, err := h.cl.Image(context.Background(), "copy")
	if err != nil || cp.Size != 600<<20 {
		t.Errorf("image copy = %+v, %v; want a 600 MiB rootfs", cp, err)
	}
	e2fsckClean(t, cp.Rootfs)

	// A tag that moved conflicts with the existing image of that name.
	pushImage(t, reg, "team/app:v1", nil, testLayer(t, tarEntry{name: "new", body: "n"}))
	_, errOut, code := h.banger("image", "pull", ref, "--kernel", kernel)
	if code == 0 || !strings.Contains(errOut, `image "app-v1" already exists`) || !strings.Contains(errOut, "banger image delete app-v1") {
		t.Errorf("pull of a moved tag: exit %d, %s", code, errOut)
	}

	h.ok("image", "delete", "app-v1")
	if _, err := os.Stat(im.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after delete", im.Dir)
	}
}

func TestImagePullKernelChoice(t *testing.T) {
	requireE2fsprogs(t)
	reg := testregistry.New(t, nil)
	ref := pushImage(t, reg, "k/img:v1", nil, baseLayers(t)...)
	srv := catalogServer(t)
	h := newHarness(t)

	// Nothing given: a clear error before any download, and nothing left.
	_, errOut, code := h.banger("image", "pull", ref)
	for _, want := range []string{"--kernel-ref", "default_kernel_ref", "--kernel PATH", "banger kernel pull"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("pull without a kernel: exit %d, stderr %q lacks %q", code, errOut, want)
		}
	}
	if reg.BlobGETs() != 0 {
		t.Error("a pull without a kernel downloaded blobs")
	}
	if _, errOut, code := h.banger("image", "pull", ref, "--kernel-ref", "k1"); code == 0 || !strings.Contains(errOut, "banger kernel pull k1") {
		t.Errorf("pull with an unpulled kernel ref: exit %d, %s", code, errOut)
	}

	// default_kernel_ref from the config.
	h.stopDaemon()
	h.writeConfig(`kernel_catalog_url = "` + srv.URL + `/catalog.json"` + "\ndefault_kernel_ref = \"k1\"\n")
	h.ok("kernel", "pull", "k1")
	var im api.Image
	if err := json.Unmarshal([]byte(h.ok("image", "pull", ref, "--json")), &im); err != nil {
		t.Fatal(err)
	}
	if im.KernelRef != "k1" || !strings.HasPrefix(im.Kernel, h.layout.KernelsDir) {
		t.Errorf("image = %+v, want it booting catalog kernel k1", im)
	}
	e2fsckClean(t, im.Rootfs)
	if _, errOut, code := h.banger("kernel", "rm", "k1"); code == 0 || !strings.Contains(errOut, im.Name) {
		t.Errorf("kernel rm while a pulled image uses it: exit %d, %s", code, errOut)
	}
	if left := h.imagesDirEntries(); len(left) != 1 {
		t.Errorf("images dir = %v, want only the pulled image", left)
	}
}

// A hostile image fails the pull with a clear error and leaves no row
// and no directory.
func TestImagePullFailureLeavesNothing(t *testing.T) {
	reg := testregistry.New(t, nil)
	ref := pushImage(t, reg, "bad/img:v1", nil, testLayer(t, tarEntry{name: "../../escape", body: "x"}))
	h := newHarness(t)
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kernel)
	_, errOut, code := h.banger("image", "pull", ref, "--kernel", kernel)
	if code == 0 || !strings.Contains(errOut, "escapes the image root") {
		t.Fatalf("hostile pull: exit %d, %s", code, errOut)
	}
	if out := h.ok("image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("image list after a failed pull: %s", out)
	}
	if left := h.imagesDirEntries(); len(left) != 0 {
		t.Errorf("images dir after a failed pull: %v", left)
	}
}

// Ctrl-C during the download cancels the pull in the daemon; the retry
// completes from what was cached.
func TestImagePullInterruptAndRetry(t *testing.T) {
	requireE2fsprogs(t)
	big := testLayer(t, tarEntry{name: "big", body: strings.Repeat("b", 6<<20)})
	bigDigest, _ := big.Digest()
	stalled := make(chan struct{})
	var once atomic.Bool
	reg := testregistry.New(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, bigDigest.String()) || once.Swap(true) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.Header().Set("Content-Length", fmt.Sprint(rec.Body.Len()))
			w.Write(rec.Body.Bytes()[:rec.Body.Len()/3])
			w.(http.Flusher).Flush()
			close(stalled)
			<-r.Context().Done()
		})
	})
	ref := pushImage(t, reg, "slow/img:v1", nil, append(baseLayers(t), big)...)
	h := newHarness(t)
	h.startDaemon()
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kernel)

	cmd := exec.Command(filepath.Join(binDir, "banger"), "image", "pull", ref, "--kernel", kernel)
	cmd.Env = h.env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the download never started")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(errb.String(), "interrupted") {
		t.Fatalf("interrupted pull: %v, stderr %q; want exit 130", err, errb.String())
	}
	// The daemon notices the client went away and cleans up.
	deadline := time.Now().Add(10 * time.Second)
	for len(h.imagesDirEntries()) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := h.imagesDirEntries(); len(left) != 0 {
		t.Errorf("images dir after Ctrl-C: %v", left)
	}
	if ims, _ := h.cl.Images(context.Background()); len(ims) != 0 {
		t.Errorf("images after Ctrl-C: %+v", ims)
	}

	// Retry through the API, watching the NDJSON events.
	var items []string
	var steps []string
	// The daemon may still be winding the cancelled pull down; it says
	// so with a conflict until it has.
	var im api.Image
	for deadline := time.Now().Add(30 * time.Second); ; {
		items, steps = nil, nil
		im, err = h.cl.PullImage(context.Background(), api.PullImageRequest{Ref: ref, Kernel: kernel}, func(ev api.Event) {
			if ev.Item != "" && ev.Done {
				items = append(items, ev.Step+" "+ev.Item)
			}
			if ev.Message != "" {
				steps = append(steps, ev.Step)
			}
		})
		if !errors.Is(err, errdefs.ErrConflict) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	e2fsckClean(t, im.Rootfs)
	short := bigDigest.Hex[:12]
	if !contains(items, "download "+short) || !contains(items, "unpack "+short) || !contains(items, "write rootfs.ext4") {
		t.Errorf("per-item events = %v; want the big layer downloaded and unpacked, and the rootfs written", items)
	}
	if !contains(steps, "resolve") || !contains(steps, "fetch") {
		t.Errorf("steps = %v", steps)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A private registry: credentials come from the docker config the
// daemon sees ($DOCKER_CONFIG).
func TestImagePullPrivateRegistry(t *testing.T) {
	requireE2fsprogs(t)
	const user, pass = "bob", "hunter2"
	reg := testregistry.New(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	ref := pushImage(t, reg, "private/img:v1", []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: pass})}, baseLayers(t)...)
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kernel)

	h := newHarness(t)
	h.env = append(h.env, "DOCKER_CONFIG="+t.TempDir())
	_, errOut, code := h.banger("image", "pull", ref, "--kernel", kernel)
	if code == 0 || !strings.Contains(errOut, "refused access") || !strings.Contains(errOut, "docker login") {
		t.Errorf("anonymous pull: exit %d, %s", code, errOut)
	}
	h.stopDaemon()

	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	h.env = append(h.env, "DOCKER_CONFIG="+cfg)
	var im api.Image
	if err := json.Unmarshal([]byte(h.ok("image", "pull", ref, "--kernel", kernel, "--json")), &im); err != nil {
		t.Fatal(err)
	}
	if im.Source != "pull" {
		t.Errorf("image = %+v", im)
	}
	e2fsckClean(t, im.Rootfs)
}

func TestImagePullBadInput(t *testing.T) {
	h := newHarness(t)
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kernel)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "pull"}, "needs an image reference"},
		{[]string{"image", "pull", "x:y", "--size", "lots", "--kernel", kernel}, `--size "lots" is not a size`},
		{[]string{"image", "pull", "x:y", "--name", "Bad_Name", "--kernel", kernel}, "is not a DNS label"},
		{[]string{"image", "pull", "x:y", "--kernel", kernel, "--kernel-ref", "k"}, "kernel"},
		{[]string{"image", "pull", "x:y", "--initrd", kernel}, "--initrd and --modules need --kernel"},
		{[]string{"image", "pull", "docker.io/library/debian:12", "--insecure", "--kernel", kernel}, "--insecure is only allowed"},
	} {
		_, errOut, code := h.banger(tt.args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("banger %v: exit %d, stderr %q; want %q", tt.args, code, errOut, tt.want)
		}
	}
}
