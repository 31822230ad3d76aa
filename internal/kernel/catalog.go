package kernel

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"banger/api"
	"banger/api/errdefs"
)

// SchemaVersion is the catalog schema this package reads and writes.
const SchemaVersion = 1

// MaxCatalogSize bounds a catalog document; an index of kernels is a few
// kilobytes, so anything near this is a wrong URL, not a catalog.
const MaxCatalogSize = 4 << 20

// builtinJSON ships empty until kernels with verified hashes are published;
// entries are added by the publish flow in docs/kernel-catalog.md.
//
//go:embed catalog.json
var builtinJSON []byte

// Builtin returns the catalog compiled into banger. Each call returns a
// fresh copy, so callers may modify it.
func Builtin() api.Catalog {
	c, err := decodeCatalog(builtinJSON)
	if err != nil {
		// catalog.json is checked by TestBuiltinValid; reaching this is a
		// build mistake, not a runtime condition.
		panic(fmt.Sprintf("kernel: embedded catalog.json: %v", err))
	}
	return c
}

// Fetch reads and validates the catalog at src: an http:// or https:// URL,
// a file:// URL or an absolute path. A nil client means
// http.DefaultClient.
func Fetch(ctx context.Context, client *http.Client, src string) (api.Catalog, error) {
	var (
		data []byte
		err  error
	)
	switch {
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		data, err = fetchHTTP(ctx, client, src)
	case strings.HasPrefix(src, "file://"):
		var u *url.URL
		if u, err = url.Parse(src); err == nil {
			data, err = readCatalogFile(src, u.Path)
		}
	case filepath.IsAbs(src):
		data, err = readCatalogFile(src, src)
	default:
		return api.Catalog{}, errdefs.Invalid("kernel catalog %q: want an http(s):// URL, a file:// URL or an absolute path", src)
	}
	if err != nil {
		return api.Catalog{}, err
	}
	c, err := decodeCatalog(data)
	if err != nil {
		return api.Catalog{}, errdefs.Invalid("kernel catalog %s: %v", src, err)
	}
	if remote(src) {
		if err := checkRemote(c); err != nil {
			return api.Catalog{}, errdefs.Invalid("kernel catalog %s: %v", src, err)
		}
	}
	return c, nil
}

func remote(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

func fetchHTTP(ctx context.Context, client *http.Client, src string) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, errdefs.Invalid("kernel catalog %s: %v", src, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetching kernel catalog %s: %w", src, ctx.Err())
		}
		return nil, errdefs.Unavailable("fetching kernel catalog %s: %v", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errdefs.Unavailable("fetching kernel catalog %s: server answered %s", src, resp.Status)
	}
	return readLimited(src, resp.Body)
}

func readCatalogFile(src, path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, errdefs.Invalid("kernel catalog %q: file path must be absolute", src)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("kernel catalog %s does not exist", src)
	}
	if err != nil {
		return nil, fmt.Errorf("reading kernel catalog: %w", err)
	}
	defer f.Close()
	return readLimited(src, f)
}

// readLimited reads one byte past the limit so an oversized document is
// reported rather than silently cut into invalid JSON.
func readLimited(src string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCatalogSize+1))
	if err != nil {
		return nil, errdefs.Unavailable("reading kernel catalog %s: %v", src, err)
	}
	if len(data) > MaxCatalogSize {
		return nil, errdefs.Invalid("kernel catalog %s is larger than %d bytes; is the URL right?", src, MaxCatalogSize)
	}
	return data, nil
}

func decodeCatalog(data []byte) (api.Catalog, error) {
	var c api.Catalog
	// Unknown fields are allowed: a newer publisher may add optional ones,
	// and incompatible changes bump schema_version instead.
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
		return api.Catalog{}, fmt.Errorf("decoding JSON: %w", err)
	}
	if err := Validate(c); err != nil {
		return api.Catalog{}, err
	}
	return c, nil
}

// Merge returns builtin with the entries of extra added; an entry of extra
// replaces the builtin entry of the same name in place, so a configured
// catalog can override or mirror a shipped kernel. Neither input is
// modified.
func Merge(builtin, extra api.Catalog) api.Catalog {
	byName := make(map[string]api.CatalogEntry, len(extra.Kernels))
	for _, e := range extra.Kernels {
		byName[e.Name] = e
	}
	out := api.Catalog{
		SchemaVersion: SchemaVersion,
		Kernels:       make([]api.CatalogEntry, 0, len(builtin.Kernels)+len(extra.Kernels)),
	}
	for _, e := range builtin.Kernels {
		if o, ok := byName[e.Name]; ok {
			e = o
			delete(byName, e.Name)
		}
		out.Kernels = append(out.Kernels, e)
	}
	for _, e := range extra.Kernels {
		if _, ok := byName[e.Name]; ok {
			out.Kernels = append(out.Kernels, e)
			delete(byName, e.Name) // first wins if extra repeats a name
		}
	}
	return out
}

// Find returns the entry called name.
func Find(c api.Catalog, name string) (api.CatalogEntry, error) {
	for _, e := range c.Kernels {
		if e.Name == name {
			return e, nil
		}
	}
	return api.CatalogEntry{}, errdefs.NotFound("kernel %q is not in the catalog; run 'banger kernel list --available' to see what can be pulled", name)
}
