package kernel

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
)

var goodSHA = strings.Repeat("ab", 32)

func goodEntry(name string) api.CatalogEntry {
	return api.CatalogEntry{
		Name: name, Version: "6.1.0", Arch: "x86_64",
		Kernel: api.CatalogFile{URL: "https://kernels.example/" + name + "/vmlinux", SHA256: goodSHA, Size: 10},
	}
}

func TestBuiltinValid(t *testing.T) {
	c := Builtin()
	if err := Validate(c); err != nil {
		t.Fatal(err)
	}
	if c.Kernels == nil {
		t.Error("builtin kernels list is null, want []")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *api.Catalog)
		want   string // substring of the error; "" means valid
	}{
		{"good", func(c *api.Catalog) {}, ""},
		{"good with all files", func(c *api.Catalog) {
			f := api.CatalogFile{URL: "file:///srv/initrd", SHA256: strings.ToUpper(goodSHA), Size: 1}
			c.Kernels[0].Initrd, c.Kernels[0].Modules = &f, &f
		}, ""},
		{"schema version", func(c *api.Catalog) { c.SchemaVersion = 2 }, "schema_version 2"},
		{"empty name", func(c *api.Catalog) { c.Kernels[0].Name = "" }, `kernels[0] "": name must be 1 to 63`},
		{"long name", func(c *api.Catalog) { c.Kernels[0].Name = strings.Repeat("a", 64) }, "name must be 1 to 63"},
		{"upper case name", func(c *api.Catalog) { c.Kernels[0].Name = "Linux" }, "name must be lowercase"},
		{"dot name", func(c *api.Catalog) { c.Kernels[0].Name = ".." }, "name must be lowercase"},
		{"slash name", func(c *api.Catalog) { c.Kernels[0].Name = "a/b" }, "name must be lowercase"},
		{"duplicate", func(c *api.Catalog) { c.Kernels[1].Name = "one" }, `kernels[1] "one": name is already used by kernels[0]`},
		{"arch", func(c *api.Catalog) { c.Kernels[1].Arch = "" }, `kernels[1] "two": arch is empty`},
		{"no url", func(c *api.Catalog) { c.Kernels[0].Kernel.URL = "" }, "kernel.url is empty"},
		{"ftp url", func(c *api.Catalog) { c.Kernels[0].Kernel.URL = "ftp://x/y" }, "kernel.url \"ftp://x/y\" must be http://, https:// or file://"},
		{"relative file url", func(c *api.Catalog) { c.Kernels[0].Kernel.URL = "file:vmlinux" }, "must name an absolute path"},
		{"hostless url", func(c *api.Catalog) { c.Kernels[0].Kernel.URL = "https:///vmlinux" }, "has no host"},
		{"short sha", func(c *api.Catalog) { c.Kernels[0].Kernel.SHA256 = "abc" }, `kernel.sha256 must be 64 hex digits, got "abc"`},
		{"non-hex sha", func(c *api.Catalog) { c.Kernels[0].Kernel.SHA256 = strings.Repeat("zz", 32) }, "kernel.sha256 must be 64 hex"},
		{"zero size", func(c *api.Catalog) { c.Kernels[0].Kernel.Size = 0 }, "kernel.size must be more than 0, got 0"},
		{"initrd field", func(c *api.Catalog) { c.Kernels[1].Initrd = &api.CatalogFile{URL: "https://x/i", SHA256: goodSHA} }, `kernels[1] "two": initrd.size`},
		{"modules field", func(c *api.Catalog) { c.Kernels[1].Modules = &api.CatalogFile{URL: "https://x/m", Size: 1} }, "modules.sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("one"), goodEntry("two")}}
			tt.modify(&c)
			err := Validate(c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want invalid error containing %q", err, tt.want)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	want := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("one")}}
	body, _ := json.Marshal(want)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.json":
			w.Write(body)
		case "/huge.json":
			w.Write(make([]byte, MaxCatalogSize+1))
		case "/bad.json":
			w.Write([]byte(`{"schema_version": 1, "kernels": [{"name": "X"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, src := range []string{srv.URL + "/index.json", "file://" + path, path} {
		got, err := Fetch(t.Context(), srv.Client(), src)
		if err != nil {
			t.Errorf("Fetch(%s): %v", src, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Fetch(%s) (-want +got):\n%s", src, diff)
		}
	}

	errTests := []struct {
		src  string
		kind error
		want string
	}{
		{srv.URL + "/missing.json", errdefs.ErrUnavailable, srv.URL + "/missing.json: server answered 404 Not Found"},
		{srv.URL + "/huge.json", errdefs.ErrInvalid, "is larger than 4194304 bytes"},
		{srv.URL + "/bad.json", errdefs.ErrInvalid, `bad.json: kernel catalog is invalid: kernels[0] "X": name must be lowercase`},
		{path + ".missing", errdefs.ErrNotFound, "does not exist"},
		{"index.json", errdefs.ErrInvalid, "want an http(s):// URL, a file:// URL or an absolute path"},
	}
	for _, tt := range errTests {
		_, err := Fetch(t.Context(), srv.Client(), tt.src)
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Fetch(%s): got %v, want %v error containing %q", tt.src, err, tt.kind, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	builtin := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("a"), goodEntry("b")}}
	override := goodEntry("b")
	override.Version = "6.6.0"
	extra := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("c"), override}}

	got := Merge(builtin, extra)
	want := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("a"), override, goodEntry("c")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if builtin.Kernels[1].Version != "6.1.0" {
		t.Error("Merge modified its input")
	}
	if got := Merge(api.Catalog{}, api.Catalog{}); got.Kernels == nil || got.SchemaVersion != 1 {
		t.Errorf("Merge of empty catalogs: got %+v, want version 1 and an empty list", got)
	}
}

func TestFind(t *testing.T) {
	c := api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{goodEntry("a"), goodEntry("b")}}
	if e, err := Find(c, "b"); err != nil || e.Name != "b" {
		t.Errorf("Find(b): got %q, %v", e.Name, err)
	}
	_, err := Find(c, "zz")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "banger kernel list --available") {
		t.Errorf("Find(zz): got %v, want not found suggesting banger kernel list --available", err)
	}
}
