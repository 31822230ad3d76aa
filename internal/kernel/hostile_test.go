package kernel

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
)

// A catalog fetched over the network may not make the daemon read local
// files; the same catalog read from a local file may.
func TestRemoteCatalogRefusesFileURLs(t *testing.T) {
	e := goodEntry("one")
	e.Kernel.URL = "file:///etc/shadow"
	initrd := api.CatalogFile{URL: "https://kernels.example/initrd", SHA256: goodSHA, Size: 10}
	e.Initrd = &initrd
	body, _ := json.Marshal(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{e}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "index.json")
	os.WriteFile(path, body, 0o644)

	_, err := Fetch(t.Context(), srv.Client(), srv.URL+"/index.json")
	want := `kernels[0] "one": kernel.url "file:///etc/shadow" must be http:// or https:// in a catalog fetched over the network`
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("remote catalog with a file:// kernel: %v; want an invalid error containing %q", err, want)
	}
	for _, src := range []string{path, "file://" + path} {
		if _, err := Fetch(t.Context(), srv.Client(), src); err != nil {
			t.Errorf("local catalog %s with a file:// kernel: %v", src, err)
		}
	}
}

func TestClaimedSizeBounded(t *testing.T) {
	e := goodEntry("big")
	e.Kernel.Size = MaxFileSize + 1
	err := Validate(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{e}})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "kernel.size 2147483649 is over the 2147483648 bytes") {
		t.Errorf("a 2 GiB + 1 claim: %v; want an invalid error naming kernel.size", err)
	}
	e.Kernel.Size = MaxFileSize
	if err := Validate(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{e}}); err != nil {
		t.Errorf("a 2 GiB claim: %v", err)
	}
}

// A pull that would not fit is refused before anything is downloaded, and
// leaves no empty partial directory behind.
func TestPullChecksFreeSpace(t *testing.T) {
	f := newFixture(t)
	need := int64(len(f.kernel) + len(f.initrd) + 2*len(f.modules))
	free := func(avail int64) func(string) (int64, error) {
		return func(string) (int64, error) { return avail, nil }
	}
	_, err := Pull(t.Context(), f.entry, PullOptions{Dir: f.dir, Client: f.srv.Client(), FreeSpace: free(need)})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "free some disk space") {
		t.Fatalf("pull with just the bytes it needs free (none for others): %v; want an invalid error about disk space", err)
	}
	if n := len(f.srv.requests); n != 0 {
		t.Errorf("%d requests made before the space check", n)
	}
	if left := listTree(t, f.dir); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if _, err := Pull(t.Context(), f.entry, PullOptions{Dir: f.dir, Client: f.srv.Client(), FreeSpace: free(2 * need)}); err != nil {
		t.Fatalf("pull with room: %v", err)
	}
}

// A failed pull with nothing downloaded leaves no empty .partial/<name>.
func TestFailedPullLeavesNoEmptyPartialDir(t *testing.T) {
	f := newFixture(t)
	f.srv.handle("vmlinux", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	if _, err := f.pull(t.Context(), nil); err == nil {
		t.Fatal("pull of a missing file succeeded")
	}
	if left := listTree(t, f.dir); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

func TestSweepPartials(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, age time.Duration) {
		p := filepath.Join(dir, partialDir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("part"), 0o644)
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	write("old/vmlinux.partial", 10*24*time.Hour)
	write("mixed/vmlinux", 10*24*time.Hour)
	write("mixed/initrd.partial", time.Hour)
	write("fresh/vmlinux.partial", time.Hour)
	os.MkdirAll(filepath.Join(dir, partialDir, "empty"), 0o755)

	gone, err := SweepPartials(dir, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	if want := []string{"empty", "old"}; !slices.Equal(gone, want) {
		t.Errorf("swept %q; want %q", gone, want)
	}
	want := []string{".partial", ".partial/fresh", ".partial/fresh/vmlinux.partial", ".partial/mixed", ".partial/mixed/initrd.partial", ".partial/mixed/vmlinux"}
	if got := listTree(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %q; want %q", got, want)
	}
	if gone, err := SweepPartials(filepath.Join(dir, "missing"), time.Hour); err != nil || len(gone) > 0 {
		t.Errorf("sweeping a missing dir: %q, %v", gone, err)
	}
}
