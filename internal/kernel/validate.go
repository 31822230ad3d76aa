package kernel

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"banger/api"
	"banger/api/errdefs"
)

// Validate checks c against schema version 1. It reports every problem it
// finds, each naming the entry and the JSON field, so a catalog author can
// fix them in one go.
func Validate(c api.Catalog) error {
	if c.SchemaVersion != SchemaVersion {
		return errdefs.Invalid("kernel catalog has schema_version %d; this banger reads version %d", c.SchemaVersion, SchemaVersion)
	}
	var problems []string
	seen := make(map[string]int, len(c.Kernels))
	for i, e := range c.Kernels {
		where := fmt.Sprintf("kernels[%d] %q", i, e.Name)
		for _, p := range entryProblems(e) {
			problems = append(problems, where+": "+p)
		}
		if j, dup := seen[e.Name]; dup {
			problems = append(problems, fmt.Sprintf("%s: name is already used by kernels[%d]", where, j))
		} else {
			seen[e.Name] = i
		}
	}
	if len(problems) > 0 {
		return errdefs.Invalid("kernel catalog is invalid: %s", strings.Join(problems, "; "))
	}
	return nil
}

// validateEntry checks one entry on its own, as Pull does before using its
// name as a directory.
func validateEntry(e api.CatalogEntry) error {
	if p := entryProblems(e); len(p) > 0 {
		return errdefs.Invalid("catalog entry %q is invalid: %s", e.Name, strings.Join(p, "; "))
	}
	return nil
}

func entryProblems(e api.CatalogEntry) []string {
	var p []string
	if err := checkName(e.Name); err != "" {
		p = append(p, err)
	}
	if e.Arch == "" {
		p = append(p, "arch is empty")
	}
	p = append(p, fileProblems("kernel", &e.Kernel)...)
	p = append(p, fileProblems("initrd", e.Initrd)...)
	p = append(p, fileProblems("modules", e.Modules)...)
	return p
}

// checkName keeps names safe to use as one path element and as a CLI
// argument: no '/', and no leading '.', so ".", ".." and our own
// ".partial" and ".staging-*" can never be kernel names.
func checkName(name string) string {
	if name == "" || len(name) > 63 {
		return fmt.Sprintf("name must be 1 to 63 characters, got %d", len(name))
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '-' && r != '_') {
			return "name must be lowercase letters, digits, '.', '-' and '_', starting with a letter or digit"
		}
	}
	return ""
}

func fileProblems(field string, f *api.CatalogFile) []string {
	if f == nil {
		return nil
	}
	var p []string
	if err := checkURL(f.URL); err != "" {
		p = append(p, field+".url "+err)
	}
	if !isSHA256(f.SHA256) {
		p = append(p, fmt.Sprintf("%s.sha256 must be 64 hex digits, got %q", field, f.SHA256))
	}
	switch {
	case f.Size <= 0:
		p = append(p, fmt.Sprintf("%s.size must be more than 0, got %d", field, f.Size))
	case f.Size > MaxFileSize:
		p = append(p, fmt.Sprintf("%s.size %d is over the %d bytes (2 GiB) a kernel, initrd or modules archive may have", field, f.Size, int64(MaxFileSize)))
	}
	return p
}

// MaxFileSize bounds the size a catalog may claim for one file: real
// kernels, initrds and module archives are tens of megabytes, and a claim
// is what a download is allowed to write.
const MaxFileSize = 2 << 30

// checkRemote refuses file:// URLs in a catalog fetched over http(s): a
// remote catalog must not make the daemon read local files (only the
// sha256 check would stop it). A local catalog may name local files.
func checkRemote(c api.Catalog) error {
	var problems []string
	for i, e := range c.Kernels {
		for field, f := range map[string]*api.CatalogFile{"kernel": &e.Kernel, "initrd": e.Initrd, "modules": e.Modules} {
			if f == nil {
				continue
			}
			if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				problems = append(problems, fmt.Sprintf("kernels[%d] %q: %s.url %q must be http:// or https:// in a catalog fetched over the network", i, e.Name, field, f.URL))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkURL(raw string) string {
	if raw == "" {
		return "is empty"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q does not parse: %v", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Sprintf("%q has no host", raw)
		}
	case "file":
		if !filepath.IsAbs(u.Path) {
			return fmt.Sprintf("%q must name an absolute path", raw)
		}
	default:
		return fmt.Sprintf("%q must be http://, https:// or file://", raw)
	}
	return ""
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// CheckName says whether name can name a kernel, and how to fix it.
func CheckName(name string) error {
	if p := checkName(name); p != "" {
		return errdefs.Invalid("kernel name %q: %s", name, p)
	}
	return nil
}
