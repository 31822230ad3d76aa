package kernel

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
)

const testName = "test-6.1"

// fixture is a catalog entry served by a local HTTP server.
type fixture struct {
	srv                     *fileServer
	kernel, initrd, modules []byte
	entry                   api.CatalogEntry
	dir                     string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		kernel:  randomBytes(256<<10, 1),
		initrd:  randomBytes(4<<10, 2),
		modules: modulesTar(t),
		dir:     t.TempDir(),
	}
	f.srv = newFileServer(t, map[string][]byte{"vmlinux": f.kernel, "initrd.img": f.initrd, "mods.tar.gz": f.modules})
	initrd := catalogFile(f.srv.URL+"/initrd.img", f.initrd)
	modules := catalogFile(f.srv.URL+"/mods.tar.gz", f.modules)
	f.entry = api.CatalogEntry{
		Name: testName, Version: "6.1.0", Arch: "x86_64", Description: "test kernel",
		Kernel: catalogFile(f.srv.URL+"/vmlinux", f.kernel), Initrd: &initrd, Modules: &modules,
	}
	return f
}

func (f *fixture) pull(ctx context.Context, p progress.Func) (api.Kernel, error) {
	return Pull(ctx, f.entry, PullOptions{Dir: f.dir, Client: f.srv.Client(), Progress: p, Source: "https://catalog.test/index.json"})
}

func (f *fixture) partial() string {
	return filepath.Join(f.dir, partialDir, testName, "vmlinux.partial")
}

// checkInstalled asserts the kernel is complete and nothing else is left.
func (f *fixture) checkInstalled(t *testing.T, k api.Kernel) {
	t.Helper()
	final := filepath.Join(f.dir, testName)
	want := api.Kernel{
		Name: testName, Version: "6.1.0", Arch: "x86_64", Description: "test kernel",
		Dir: final, Kernel: filepath.Join(final, "vmlinux"), Initrd: filepath.Join(final, "initrd"),
		Modules: filepath.Join(final, "modules"), SHA256: sha(f.kernel), Size: int64(len(f.kernel)),
		Source: "https://catalog.test/index.json",
	}
	if diff := cmp.Diff(want, k, cmpopts.IgnoreFields(api.Kernel{}, "CreatedAt")); diff != "" {
		t.Errorf("Pull result (-want +got):\n%s", diff)
	}
	for path, wantBody := range map[string][]byte{
		k.Kernel: f.kernel, k.Initrd: f.initrd,
		filepath.Join(k.Modules, "6.1.0/kernel/drivers/net/virtio_net.ko"): []byte("virtio"),
	} {
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, wantBody) {
			t.Errorf("%s: got %d bytes (err %v), want %d bytes", path, len(got), err, len(wantBody))
		}
	}
	if got, err := os.Readlink(filepath.Join(k.Modules, "6.1.0/kernel/net")); got != "drivers/net" {
		t.Errorf("modules symlink: got %q (err %v), want %q", got, err, "drivers/net")
	}
	top, _ := os.ReadDir(f.dir)
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	if want := []string{partialDir, testName}; !slices.Equal(names, want) {
		t.Errorf("kernels dir holds %q, want %q", names, want)
	}
	if left := listTree(t, filepath.Join(f.dir, partialDir)); len(left) > 0 {
		t.Errorf("partial downloads left behind: %q", left)
	}
}

func TestPull(t *testing.T) {
	f := newFixture(t)
	var events []api.Event
	k, err := f.pull(t.Context(), func(ev api.Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	f.checkInstalled(t, k)
	var done []string
	for _, ev := range events {
		if ev.Done {
			done = append(done, ev.Item)
		}
	}
	if want := []string{"vmlinux", "initrd", "modules.tar"}; !slices.Equal(done, want) {
		t.Errorf("finished items: got %q, want %q", done, want)
	}
}

func TestPullFileURLs(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	for name, b := range map[string][]byte{"vmlinux": f.kernel, "initrd.img": f.initrd, "mods.tar.gz": f.modules} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.entry.Kernel.URL = "file://" + filepath.Join(src, "vmlinux")
	f.entry.Initrd.URL = "file://" + filepath.Join(src, "initrd.img")
	f.entry.Modules.URL = "file://" + filepath.Join(src, "mods.tar.gz")
	k, err := f.pull(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.checkInstalled(t, k)

	if err := Remove(f.dir, testName); err != nil {
		t.Fatal(err)
	}
	f.entry.Kernel.Size++
	if _, err := f.pull(t.Context(), nil); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "vmlinux size mismatch") {
		t.Errorf("pull of a short local file: got %v, want a size mismatch", err)
	}
}

func TestPullSHA256Mismatch(t *testing.T) {
	f := newFixture(t)
	f.entry.Initrd.SHA256 = sha([]byte("something else"))
	_, err := f.pull(t.Context(), nil)
	want := `kernel "test-6.1": initrd sha256 mismatch: catalog says ` + sha([]byte("something else")) +
		`, downloaded file has ` + sha(f.initrd) + `; nothing was kept — the catalog entry or its mirror is wrong`
	if err == nil || err.Error() != want {
		t.Fatalf("got error %v\nwant %s", err, want)
	}
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("error kind: got %s, want invalid", errdefs.KindOf(err))
	}
	if left := listTree(t, f.dir); len(left) > 1 || len(left) == 1 && left[0] != partialDir {
		t.Errorf("left behind: %q, want at most an empty %s", left, partialDir)
	}
}

func TestPullSizeMismatch(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		chunked bool // no Content-Length, so only the byte count can tell
		want    string
	}{
		{"smaller in catalog", 1000, false, "vmlinux size mismatch: catalog says 1000 bytes"},
		{"larger in catalog", 300 << 10, false, "vmlinux size mismatch: catalog says 307200 bytes"},
		{"oversize stream", 1000, true, "vmlinux is larger than the catalog's 1000 bytes; nothing was kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.entry.Kernel.Size = tt.size
			if tt.chunked {
				f.srv.handle("vmlinux", func(w http.ResponseWriter, r *http.Request) {
					w.Write(f.kernel[:2000])
					w.(http.Flusher).Flush()
				})
			}
			_, err := f.pull(t.Context(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("got error %v, want invalid error containing %q", err, tt.want)
			}
			if left := listTree(t, f.dir); len(left) > 1 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

func TestPullConflict(t *testing.T) {
	f := newFixture(t)
	if _, err := f.pull(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	_, err := f.pull(t.Context(), nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "run 'banger kernel rm test-6.1' first") {
		t.Errorf("second pull: got %v, want conflict suggesting banger kernel rm", err)
	}
}

func TestPullRefusesHostileModules(t *testing.T) {
	f := newFixture(t)
	f.modules = makeTar(t, true, tarEntry{name: "6.1.0/../../../evil", typ: tar.TypeReg, body: "x"})
	f.srv.files["mods.tar.gz"] = f.modules
	*f.entry.Modules = catalogFile(f.entry.Modules.URL, f.modules)
	_, err := f.pull(t.Context(), nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `name contains ".."`) {
		t.Fatalf("got %v, want invalid error about ..", err)
	}
	for _, e := range listTree(t, f.dir) {
		if !strings.HasPrefix(e, partialDir) {
			t.Errorf("left behind outside %s: %s", partialDir, e)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(f.dir), "evil")); err == nil {
		t.Error("tarball wrote outside the kernels dir")
	}
}

func TestRemove(t *testing.T) {
	f := newFixture(t)
	k, err := f.pull(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Remove(f.dir, testName); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kernel dir still there: %v", err)
	}
	if err := Remove(f.dir, testName); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removing twice: got %v, want not found", err)
	}
	if err := Remove(f.dir, "../etc"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("removing ../etc: got %v, want invalid", err)
	}
	// A partial download alone is removable too.
	os.MkdirAll(filepath.Join(f.dir, partialDir, testName), 0o755)
	if err := Remove(f.dir, testName); err != nil {
		t.Errorf("removing a partial download: %v", err)
	}
	if left := listTree(t, f.dir); !slices.Equal(left, []string{partialDir}) {
		t.Errorf("left behind: %q", left)
	}
}

func TestCleanStaging(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{".staging-a-123/vmlinux", ".staging-b-rm-9/modules/x", "keep/vmlinux"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	if err := CleanStaging(dir); err != nil {
		t.Fatal(err)
	}
	if got, want := listTree(t, dir), []string{"keep", "keep/vmlinux"}; !slices.Equal(got, want) {
		t.Errorf("after CleanStaging: got %q, want %q", got, want)
	}
	if err := CleanStaging(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}
